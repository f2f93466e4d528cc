"""schemathesis hooks for .ci/schemathesis: the one check meterpay adds.

A few operations may rightly refuse a request that is valid by the document,
because the refusal depends on state a generated request cannot know: a
Stripe API key only Stripe can tell real, a Stripe-Signature only the app's
webhook secret can make, references to objects that do not exist, the time
of day. `.ci/schemathesis.toml` lets those operations answer 400 to valid
data; this check makes sure such a 400 is one of exactly those refusals —
every invalid parameter it names is listed below for that operation, with
its rule and reason — so that any other refusal of valid data (the document
saying less than the server checks) still fails the run.
"""

import re

import schemathesis

ANY = r".*"
API_KEY = r"^Stripe rejected this API key"
# The app's mode is fixed at install: a key of the other mode is refused.
KEY_MODE = r"^this is a (live|test)-mode key, but app \[\w+\] is installed in (live|test) mode"
APP_REF = r"^app \[\w+\] (does not exist in this namespace|was uninstalled)"
PROFILE_REF = r"^billing profile \[\w+\] (does not exist|was deleted)"
NO_STRIPE_CUSTOMER = r"has no Stripe customer in app"
STRIPE_CUSTOMER = r"^Stripe customer \[[^\]]+\] does not exist|^Stripe refused the request: No such customer: "
STRIPE_CUSTOMER_NEEDED = r"^the customer has no Stripe customer for app \[\w+\] yet"
EXPIRY = r"^must be between 30 minutes and 24 hours from now"
CURRENCY = r"^is required in setup mode when payment_method_types is not given and the customer has no currency"
DEFAULT_PROFILE = r"is the default profile and stays the default"
APPS_FIXED = r"^a billing profile's apps are fixed when it is created"
PORTAL_CONFIGURATION = r"^Stripe refused the request: No such configuration: "
NO_STRIPE_APP = r"^no Stripe app is set up for this customer"
PAYMENT_METHOD = (
    r"^payment method \[[^\]]+\] (does not exist in Stripe account|is not attached to Stripe customer"
    r"|belongs to another Stripe customer)"
)
# Stripe's own rule for an embedded session that may redirect: the account's
# payment methods decide when the request lists none.
RETURN_URL = r"^Stripe refused the request: `return_url` is required when `ui_mode` is `embedded"
# Invoicing.
NO_PROFILE = r"^customer \[\w+\] has no billing profile to invoice with"
CUSTOMER_MISSING = r"^customer \[\w+\] does not exist in this namespace"
NOTHING_PENDING = r"^customer \[\w+\] has no pending lines to invoice as of "
NOT_PENDING = r"^\[\w+\] is not a pending line of customer \[\w+\]"
DUE_LATER = r"^line \[\w+\] is to be invoiced at \S+, after asOf "
ACTION_REFUSED = r"^invoice \[\w+\] is [\w.]+: \w+ does not apply \("
MOVED = r"^invoice \[\w+\] changed while this request was served"
# Rules across members no schema can state (documented in descriptions).
PERIOD_ORDER = r"^must not be before period\.from$"
TIER_ORDER = r"^must be greater than zero and than the previous tier's$"
OPEN_TIER = r"^only the last tier may be open-ended$"
BEYOND_TIERS = r"^is beyond the last tier \(up to [0-9.]+\); add an open-ended tier$"
TOO_LARGE = r"^prices the line at more than [0-9]+ \(the largest amount of a line\)$"
NOT_A_LINE = r"^\[\w+\] is not a line of invoice \[\w+\]$|^names a line given twice$"
KEEPS_A_LINE = r"^a draft invoice needs at least one line; delete the invoice instead$"
OWN_CUSTOMER = r"^an invoice stays with its customer \[\w+\]"

LINE = r"lines\[\d+\]"
PRICE = LINE + r"\.(rate_?[cC]ard\.)?price"
LINE_RULES = [
    (LINE + r"\.period\.to", "invalid", PERIOD_ORDER),
    (PRICE + r"\.tiers\[\d+\]\.up_?[tT]o_?[aA]mount", "invalid", TIER_ORDER),
    (PRICE + r"\.tiers\[\d+\]\.up_?[tT]o_?[aA]mount", "required", OPEN_TIER),
    (LINE + r"\.quantity", "invalid", BEYOND_TIERS),
    (LINE + r"\.quantity", "invalid", TOO_LARGE),
]
INVOICE_STATE = [(r"invoiceId", "invalid", ACTION_REFUSED), (r"invoiceId", "invalid", MOVED)]
INVOICE_UPDATE = INVOICE_STATE + LINE_RULES + [
    (LINE + r"\.id", "invalid", NOT_A_LINE),
    (r"lines", "min_items", KEEPS_A_LINE),
]

# operation label -> [(field pattern, rule or None for any, reason pattern)]
STATE_DEPENDENT = {
    # A signature only the app's webhook secret can make.
    "POST /api/v1/apps/{id}/stripe/webhook": [(r"Stripe-Signature", None, ANY)],
    # Stripe decides whether a well-formed key is real.
    "POST /api/v1/marketplace/listings/{type}/install/apikey": [(r"apiKey", "invalid", API_KEY)],
    "POST /api/v3/openmeter/app-catalog/install": [(r"api_key", "invalid", API_KEY)],
    "PUT /api/v1/apps/{id}": [(r"secretAPIKey", "invalid", API_KEY), (r"secretAPIKey", "invalid", KEY_MODE)],
    "PUT /api/v1/apps/{id}/stripe/api-key": [
        (r"secretAPIKey", "invalid", API_KEY),
        (r"secretAPIKey", "invalid", KEY_MODE),
    ],
    # References to apps that do not exist (or were uninstalled).
    "POST /api/v1/billing/profiles": [(r"apps\.(tax|invoicing|payment)", "invalid", APP_REF)],
    "POST /api/v3/openmeter/profiles": [(r"apps\.(tax|invoicing|payment)\.id", "invalid", APP_REF)],
    # The stored profile decides: the default stays the default; v1 may echo
    # the profile's own apps back, not others.
    "PUT /api/v1/billing/profiles/{id}": [
        (r"default", "invalid", DEFAULT_PROFILE),
        (r"apps\.(tax|invoicing|payment)", "invalid", APPS_FIXED),
    ],
    "PUT /api/v3/openmeter/profiles/{id}": [(r"default", "invalid", DEFAULT_PROFILE)],
    # References to billing profiles that do not exist (or were deleted).
    "PUT /api/v1/billing/customers/{customerId}": [(r"billingProfileId", "invalid", PROFILE_REF)],
    # A portal session needs the customer's Stripe customer, which only a
    # checkout session or a linked Stripe customer id creates.
    "POST /api/v1/customers/{customerIdOrKey}/stripe/portal": [
        (r"customerIdOrKey", None, NO_STRIPE_CUSTOMER),
        (r"configurationId", "invalid", PORTAL_CONFIGURATION),
    ],
    "POST /api/v3/openmeter/customers/{customerId}/billing/stripe/portal-sessions": [
        (r"customerId", None, NO_STRIPE_CUSTOMER),
        (r"stripe_options\.configuration_id", "invalid", PORTAL_CONFIGURATION),
    ],
    # Stripe customers that do not exist in the app's Stripe account.
    "PUT /api/v1/customers/{customerIdOrKey}/apps": [
        (r"\[\d+\]\.stripeCustomerId", "invalid", STRIPE_CUSTOMER),
        (r"\[\d+\]\.stripeDefaultPaymentMethodId", "invalid", PAYMENT_METHOD),
    ],
    "PUT /api/v1/customers/{customerIdOrKey}/stripe": [
        (r"stripeCustomerId", "invalid", STRIPE_CUSTOMER),
        (r"stripeDefaultPaymentMethodId", "invalid", PAYMENT_METHOD),
    ],
    "PUT /api/v3/openmeter/customers/{customerId}/billing/app-data": [
        (r"stripe\.customer_id", "invalid", STRIPE_CUSTOMER),
        (r"stripe\.default_payment_method_id", "invalid", PAYMENT_METHOD),
        # Only a default payment method given, and no Stripe customer known yet.
        (r"stripe\.customer_id", "required", STRIPE_CUSTOMER_NEEDED),
    ],
    # The expiry is relative to now; the currency may come from the customer.
    "POST /api/v1/stripe/checkout/sessions": [
        (r"options\.returnURL", "invalid", RETURN_URL),
        (r"options\.expiresAt", "invalid", EXPIRY),
        (r"options\.currency", "required", CURRENCY),
        (r"stripeCustomerId", "invalid", STRIPE_CUSTOMER),
    ],
    "POST /api/v3/openmeter/customers/{customerId}/billing/stripe/checkout-sessions": [
        (r"stripe_options\.expires_at", "invalid", EXPIRY),
        (r"stripe_options\.currency", "required", CURRENCY),
        (r"stripe_options\.return_url", "invalid", RETURN_URL),
    ],
    "PUT /api/v3/openmeter/apps/{appId}": [
        (r"secret_api_key", "invalid", API_KEY),
        (r"secret_api_key", "invalid", KEY_MODE),
    ],
    "PUT /api/v3/openmeter/customers/{customerId}/billing": [
        (r"billing_profile\.id", "invalid", PROFILE_REF),
        (r"app_data\.stripe", "invalid", NO_STRIPE_APP),
        (r"app_data\.stripe\.customer_id", "invalid", STRIPE_CUSTOMER),
        (r"app_data\.stripe\.customer_id", "required", STRIPE_CUSTOMER_NEEDED),
        (r"app_data\.stripe\.default_payment_method_id", "invalid", PAYMENT_METHOD),
    ],
    # Pending lines and invoicing them.
    "POST /api/v1/billing/customers/{customerId}/invoices/pending-lines": LINE_RULES
    + [(r"customerId", "invalid", NO_PROFILE)],
    "POST /api/v1/billing/invoices/invoice": [
        (r"customerId", "invalid", CUSTOMER_MISSING),
        (r"customerId", "invalid", NOTHING_PENDING),
        (r"customerId", "invalid", NO_PROFILE),
        (r"filters\.lineIds\[\d+\]", "invalid", NOT_PENDING),
        (r"filters\.lineIds\[\d+\]", "invalid", DUE_LATER),
    ],
    # The invoice's status decides which actions apply.
    "POST /api/v1/billing/invoices/{invoiceId}/advance": INVOICE_STATE,
    "POST /api/v1/billing/invoices/{invoiceId}/approve": INVOICE_STATE,
    "POST /api/v1/billing/invoices/{invoiceId}/retry": INVOICE_STATE,
    "POST /api/v1/billing/invoices/{invoiceId}/void": INVOICE_STATE,
    "DELETE /api/v1/billing/invoices/{invoiceId}": INVOICE_STATE,
    "PUT /api/v1/billing/invoices/{invoiceId}": INVOICE_UPDATE,
    "POST /api/v3/openmeter/billing/invoices/{invoiceId}/advance": INVOICE_STATE,
    "POST /api/v3/openmeter/billing/invoices/{invoiceId}/approve": INVOICE_STATE,
    "POST /api/v3/openmeter/billing/invoices/{invoiceId}/retry": INVOICE_STATE,
    "DELETE /api/v3/openmeter/billing/invoices/{invoiceId}": INVOICE_STATE,
    "PUT /api/v3/openmeter/billing/invoices/{invoiceId}": INVOICE_UPDATE
    + [(r"customer\.id", "invalid", OWN_CUSTOMER)],
}


def explained(label, parameter):
    for field, rule, reason in STATE_DEPENDENT.get(label, []):
        if (
            re.fullmatch(field, parameter.get("field", ""))
            and (rule is None or parameter.get("rule") == rule)
            and re.search(reason, parameter.get("reason", ""))
        ):
            return True
    return False


@schemathesis.check
def valid_data_refused_only_for_state(ctx, response, case):
    """A 400 to valid data names only refusals that depend on state."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    label = case.operation.label
    if label not in STATE_DEPENDENT:
        # positive_data_acceptance already refuses this 400.
        return None
    try:
        parameters = response.json().get("invalid_parameters") or []
    except ValueError:
        parameters = []
    unexplained = [p for p in parameters if not explained(label, p)]
    if not parameters or unexplained:
        raise AssertionError(
            "Valid data refused for a reason that does not depend on state: "
            + (str(unexplained) if unexplained else response.text[:500])
        )
    return None
