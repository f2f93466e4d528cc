//! Installing, rotating and uninstalling Stripe apps. Stripe is called
//! with no database transaction open; when a step after creating the Stripe
//! webhook endpoint fails, the endpoint is deleted again so no half-installed
//! app is left behind.

use std::collections::BTreeMap;

use super::Context;
use crate::billing::app::{self, App, AppStatus};
use crate::error::{Error, FieldError, Remedy, Result, Rule, Violations};
use crate::ids::AppId;
use crate::secrets;
use crate::store::apps::{NewApp, NewWebhook, UnpinnedWebhook, duplicate_account};
use crate::stripe::events::HANDLED as WEBHOOK_EVENTS;
use crate::stripe::{
    self, CreatedWebhookEndpoint, META_APP_ID, META_NAMESPACE, StripeClient, StripeError,
};

/// What a client asks to install (field names in v3 spelling).
#[derive(Debug, Clone)]
pub struct InstallStripe {
    pub name: String,
    pub description: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub api_key: String,
    pub create_billing_profile: bool,
}

#[derive(Debug, Clone)]
pub struct Installed {
    pub app: App,
    /// Capability types this app became the default for (a default billing
    /// profile was created with it).
    pub default_for_capability_types: Vec<&'static str>,
}

/// The capability types a default profile made of one Stripe app covers.
pub const DEFAULT_CAPABILITIES: &[&str] =
    &["calculate_tax", "invoice_customers", "collect_payments"];

/// The path Stripe posts this app's events to.
pub fn webhook_path(app_id: AppId) -> String {
    format!("/api/v1/apps/{app_id}/stripe/webhook")
}

pub async fn install_stripe(ctx: &Context, ns: &str, req: InstallStripe) -> Result<Installed> {
    let mut v = Violations::default();
    app::check_app_fields(
        &mut v,
        &req.name,
        req.description.as_deref(),
        req.labels.as_ref(),
    );
    let key_livemode = app::check_api_key(&mut v, "api_key", &req.api_key);
    v.into_result()?;

    let client = ctx.stripe.client(&req.api_key);
    let account = client
        .account()
        .await
        .map_err(|e| key_error(e, "api_key"))?;
    // Cheap early answer; the unique index decides under races.
    if ctx
        .store
        .app_for_account(ns, &account.id, key_livemode)
        .await?
        .is_some()
    {
        return Err(duplicate_account(&account.id, key_livemode));
    }

    let id = AppId::new();
    let endpoint = register_endpoint(
        ctx,
        &client,
        ns,
        id,
        &format!("meterpay-app-{id}-webhook-endpoint"),
    )
    .await
    .map_err(|e| key_error(e, "api_key"))?;

    let new = NewApp {
        id,
        name: req.name,
        description: req.description,
        labels: req.labels,
        stripe_account_id: account.id,
        livemode: key_livemode,
        masked_api_key: secrets::mask(&req.api_key),
        api_key_encrypted: ctx.secrets.encrypt(&req.api_key, &App::api_key_context(id)),
        webhook_endpoint_id: Some(endpoint.id.clone()),
        webhook_secret_encrypted: Some(
            ctx.secrets
                .encrypt(&endpoint.secret, &App::webhook_secret_context(id)),
        ),
        webhook_api_version: Some(stripe::api_version().to_owned()),
        webhook_events: Some(WEBHOOK_EVENTS.join(",")),
    };
    let installed = match ctx.store.insert_app(ns, new).await {
        Ok(app) => app,
        Err(err) => {
            remove_endpoint(&client, &endpoint.id).await;
            return Err(err);
        }
    };

    let mut default_for = Vec::new();
    if req.create_billing_profile {
        let profile_name = format!("{} billing profile", installed.name);
        match ctx
            .store
            .create_default_profile_for_app(ns, id, &profile_name)
            .await
        {
            Ok(Some(_)) => default_for = DEFAULT_CAPABILITIES.to_vec(),
            Ok(None) => {}
            Err(err) => {
                // Undo: the app row, then the Stripe endpoint.
                if let Err(undo) = ctx.store.delete_app(ns, id).await {
                    tracing::error!(app_id = %id, error = %undo, "could not roll back an app install");
                }
                remove_endpoint(&client, &endpoint.id).await;
                return Err(err);
            }
        }
    }
    tracing::info!(app_id = %id, namespace = ns, account = %installed.stripe_account_id, "installed Stripe app");
    Ok(Installed {
        app: installed,
        default_for_capability_types: default_for,
    })
}

/// New name, description and labels of an app.
#[derive(Debug, Clone, Copy)]
pub struct AppNaming<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub labels: Option<&'a BTreeMap<String, String>>,
}

/// Renames an app and, when `new_api_key` is given, rotates its key after
/// verifying that Stripe accepts it and that it belongs to the same account.
pub async fn update_stripe(
    ctx: &Context,
    ns: &str,
    id: AppId,
    naming: Option<AppNaming<'_>>,
    new_api_key: Option<&str>,
) -> Result<App> {
    // The field's v3 name; the v1 API re-spells it.
    let field = "secret_api_key";
    let mut v = Violations::default();
    if let Some(n) = naming {
        app::check_app_fields(&mut v, n.name, n.description, n.labels);
    }
    let key_livemode = new_api_key.map(|key| app::check_api_key(&mut v, field, key));
    v.into_result()?;
    let existing = ctx.store.live_app(ns, id).await?;
    if let Some(livemode) = key_livemode
        && livemode != existing.livemode
    {
        let (given, installed) = if livemode {
            ("live", "test")
        } else {
            ("test", "live")
        };
        return Err(Error::field(
            field,
            Rule::Invalid,
            format!(
                "this is a {given}-mode key, but app [{id}] is installed in {installed} mode: the \
                 Stripe customers and payment methods it knows exist only in {installed} mode; \
                 install another app for the account's {given} mode"
            ),
        ));
    }

    if let Some(key) = new_api_key {
        let account = ctx
            .stripe
            .client(key)
            .account()
            .await
            .map_err(|e| key_error(e, field))?;
        if account.id != existing.stripe_account_id {
            return Err(Error::field(
                field,
                Rule::Invalid,
                format!(
                    "this key belongs to Stripe account [{}], but app [{id}] is connected to [{}]; \
                     install a new app for another account",
                    account.id, existing.stripe_account_id
                ),
            ));
        }
        ctx.store
            .set_app_api_key(
                ns,
                id,
                &secrets::mask(key),
                &ctx.secrets.encrypt(key, &App::api_key_context(id)),
            )
            .await?;
        tracing::info!(app_id = %id, namespace = ns, "rotated Stripe API key");
    }
    match naming {
        Some(n) => {
            ctx.store
                .update_app(ns, id, n.name, n.description, n.labels)
                .await
        }
        None => ctx.store.live_app(ns, id).await,
    }
}

/// Uninstalls: refuses while a billing profile uses the app, deletes the
/// webhook endpoint in Stripe, then soft-deletes the app.
pub async fn uninstall(ctx: &Context, ns: &str, id: AppId) -> Result<()> {
    let existing = ctx.store.live_app(ns, id).await?;
    if let Some((profile_id, profile_name)) = ctx
        .store
        .profiles_using_app(ns, id)
        .await?
        .into_iter()
        .next()
    {
        return Err(Error::Conflict {
            field: None,
            detail: format!(
                "app [{id}] is used by billing profile [{profile_id}] ({profile_name}); \
                 point that profile at another app or delete it first"
            ),
        });
    }
    if let Some(endpoint) = &existing.webhook_endpoint_id {
        let client = client_for(ctx, ns, id).await?;
        match client.delete_webhook_endpoint(endpoint).await {
            Ok(()) => {}
            // A revoked key cannot delete anything; uninstalling is how users
            // clean up after revoking, so proceed (the endpoint dies with the key's access).
            Err(StripeError::KeyRejected { message }) => {
                tracing::warn!(app_id = %id, %message, "Stripe rejected the app's key; uninstalling without deleting its webhook endpoint");
            }
            Err(e) => return Err(stripe_error(e)),
        }
    }
    ctx.store.delete_app(ns, id).await?;
    ctx.clients.forget(id);
    tracing::info!(app_id = %id, namespace = ns, "uninstalled Stripe app");
    Ok(())
}

/// A Stripe client with the app's decrypted key.
pub async fn client_for(ctx: &Context, ns: &str, id: AppId) -> Result<StripeClient> {
    let secrets = ctx
        .store
        .app_secrets(ns, id)
        .await?
        .ok_or_else(|| Error::not_found("app", id))?;
    client_with_key(ctx, id, &secrets.api_key_encrypted)
}

/// The Stripe client for app `id`'s key as stored (`api_key_encrypted`, read
/// by the caller with the app): decrypted once per stored ciphertext, then
/// taken from [`super::ClientCache`]. A rotated key is a new ciphertext, so
/// no client of an older key is handed out.
pub fn client_with_key(ctx: &Context, id: AppId, api_key_encrypted: &str) -> Result<StripeClient> {
    if api_key_encrypted.is_empty() {
        return Err(Error::Gone(format!(
            "app [{id}] was uninstalled; install it again to use it"
        )));
    }
    if let Some(client) = ctx.clients.get(id, api_key_encrypted) {
        return Ok(client);
    }
    let key = ctx
        .secrets
        .decrypt(api_key_encrypted, &App::api_key_context(id))
        .map_err(|e| Error::Internal(anyhow::Error::new(e)))?;
    let client = ctx.stripe.client(&key);
    ctx.clients.put(id, api_key_encrypted, client.clone());
    Ok(client)
}

/// Creates app `id`'s webhook endpoint in Stripe: meterpay's URL for the
/// app, the events it handles, its ids in the metadata, and the pinned API
/// version (so events arrive in the shape meterpay parses, whatever the
/// account's default version is).
async fn register_endpoint(
    ctx: &Context,
    client: &StripeClient,
    ns: &str,
    id: AppId,
    idempotency_key: &str,
) -> std::result::Result<CreatedWebhookEndpoint, StripeError> {
    let url = format!("{}{}", ctx.public_url, webhook_path(id));
    let metadata = BTreeMap::from([
        (META_NAMESPACE.to_owned(), ns.to_owned()),
        (META_APP_ID.to_owned(), id.to_string()),
    ]);
    client
        .create_webhook_endpoint(&url, WEBHOOK_EVENTS, &metadata, idempotency_key)
        .await
}

/// Run on start: every app whose webhook endpoint was created before
/// meterpay pinned the API version (or with another version) gets a new
/// endpoint of the pinned version, and then the old one is deleted; an
/// endpoint of the pinned version subscribed to other events than meterpay
/// handles now is resubscribed (Stripe can change that in place). At
/// every moment the app has a working endpoint: the new one is created
/// first, both signing secrets are accepted until the old endpoint is gone.
/// Safe when several processes start at once: they create the new endpoint
/// under one idempotency key (so Stripe makes it once), only one of them
/// swaps it in (the update names the old endpoint), and deleting an endpoint
/// already deleted succeeds. Failures are logged and retried on the next start.
pub async fn pin_webhook_endpoints(ctx: &Context) -> usize {
    let pinned = stripe::api_version();
    let apps = match ctx
        .store
        .unpinned_webhooks(pinned, &WEBHOOK_EVENTS.join(","))
        .await
    {
        Ok(apps) => apps,
        Err(err) => {
            tracing::error!(error = %err, "could not list apps whose webhook endpoints need the pinned API version");
            return 0;
        }
    };
    let mut pinned_apps = 0;
    for app in apps {
        match pin_webhook_endpoint(ctx, &app).await {
            Ok(()) => pinned_apps += 1,
            Err(err) => {
                tracing::warn!(app_id = %app.id, namespace = app.namespace, error = %err, "could not move the app's webhook endpoint to the pinned API version; trying again on the next start");
            }
        }
    }
    pinned_apps
}

async fn pin_webhook_endpoint(ctx: &Context, app: &UnpinnedWebhook) -> Result<()> {
    let pinned = stripe::api_version();
    let (ns, id) = (app.namespace.as_str(), app.id);
    let client = client_for(ctx, ns, id).await?;
    let events = WEBHOOK_EVENTS.join(",");
    let mut previous = app.previous_endpoint_id.clone();
    if app.api_version.as_deref() == Some(pinned) && app.events.as_deref() != Some(&events) {
        if let Err(err) = client
            .set_webhook_endpoint_events(&app.endpoint_id, WEBHOOK_EVENTS)
            .await
        {
            note_key_rejected(ctx, ns, id, &err).await;
            return Err(stripe_error(err));
        }
        ctx.store
            .set_app_webhook_events(ns, id, &app.endpoint_id, &events)
            .await?;
        tracing::info!(app_id = %id, namespace = ns, endpoint = app.endpoint_id, events, "resubscribed the app's webhook endpoint");
    }
    if app.api_version.as_deref() != Some(pinned) {
        let endpoint = register_endpoint(
            ctx,
            &client,
            ns,
            id,
            &format!(
                "meterpay-app-{id}-webhook-endpoint-{pinned}-{}",
                app.endpoint_id
            ),
        )
        .await;
        let endpoint = match endpoint {
            Ok(endpoint) => endpoint,
            Err(err) => {
                note_key_rejected(ctx, ns, id, &err).await;
                return Err(stripe_error(err));
            }
        };
        let secret = ctx
            .secrets
            .encrypt(&endpoint.secret, &App::webhook_secret_context(id));
        let swapped = ctx
            .store
            .replace_app_webhook(
                ns,
                id,
                &app.endpoint_id,
                &NewWebhook {
                    endpoint_id: &endpoint.id,
                    secret_encrypted: &secret,
                    api_version: pinned,
                    events: &events,
                },
            )
            .await?;
        if swapped {
            tracing::info!(app_id = %id, namespace = ns, endpoint = endpoint.id, old_endpoint = app.endpoint_id, api_version = pinned, "replaced the app's webhook endpoint with one of the pinned API version");
            previous = Some(app.endpoint_id.clone());
        } else {
            // Another process swapped in the same endpoint (one idempotency
            // key) and deletes the old one itself; an endpoint the app does
            // not use after all (it was re-registered meanwhile) goes.
            let current = ctx.store.get_app(ns, id).await?;
            if current.and_then(|a| a.webhook_endpoint_id).as_deref() != Some(&endpoint.id) {
                remove_endpoint(&client, &endpoint.id).await;
            }
        }
    }
    if let Some(previous) = previous {
        client
            .delete_webhook_endpoint(&previous)
            .await
            .map_err(stripe_error)?;
        ctx.store.forget_previous_webhook(ns, id, &previous).await?;
    }
    Ok(())
}

/// Best-effort cleanup of an endpoint created during a failed install.
async fn remove_endpoint(client: &StripeClient, endpoint_id: &str) {
    if let Err(err) = client.delete_webhook_endpoint(endpoint_id).await {
        tracing::error!(endpoint = endpoint_id, error = %err, "could not delete the Stripe webhook endpoint of a failed install; delete it in the Stripe dashboard");
    }
}

/// Stripe's answer about a key the client just gave us.
fn key_error(err: StripeError, field: &str) -> Error {
    match err {
        StripeError::KeyRejected { message } => Error::field(
            field,
            Rule::Invalid,
            format!("Stripe rejected this API key: {message}"),
        ),
        other => stripe_error(other),
    }
}

/// Any other Stripe failure as a client-facing error: Stripe's 4xx become a
/// 400 naming Stripe's parameter (as `stripe.<param>`) with Stripe's message.
pub fn stripe_error(err: StripeError) -> Error {
    match err {
        StripeError::Rejected { message, param, .. } => Error::field(
            format!("stripe.{}", param.as_deref().unwrap_or("request")),
            Rule::Invalid,
            format!("Stripe refused the request: {message}"),
        ),
        StripeError::KeyRejected { message } => Error::Invalid(vec![
            FieldError::new(
                "app",
                Rule::Invalid,
                format!("Stripe rejected the app's API key ({message}); it is no longer valid"),
            )
            .with_remedy(Remedy::RotateApiKey { app_id: None }),
        ]),
        StripeError::Unavailable {
            detail,
            retry_after_secs,
        } => Error::Unavailable {
            detail: format!("Stripe is unavailable: {detail}"),
            retry_after_secs: Some(retry_after_secs.unwrap_or(5)),
        },
    }
}

/// Marks an app unauthorized when Stripe rejected its stored key.
pub async fn note_key_rejected(ctx: &Context, ns: &str, id: AppId, err: &StripeError) {
    if matches!(err, StripeError::KeyRejected { .. })
        && let Err(e) = ctx
            .store
            .set_app_status(ns, id, AppStatus::Unauthorized)
            .await
    {
        tracing::warn!(app_id = %id, error = %e, "could not mark app unauthorized");
    }
}

/// `serve --emulate-stripe`: make sure the namespace has an app on the
/// emulator's default account (installing it with a default billing profile
/// on first start). The emulator keeps its state in memory, so on later
/// starts the app's webhook endpoint is registered again and its new signing
/// secret stored.
pub async fn bootstrap_emulated(ctx: &Context, ns: &str, key: &str) -> Result<App> {
    let client = ctx.stripe.client(key);
    let account = client.account().await.map_err(stripe_error)?;
    let Some(existing) = ctx.store.app_for_account(ns, &account.id, false).await? else {
        let installed = install_stripe(
            ctx,
            ns,
            InstallStripe {
                name: "Stripe (emulated)".to_owned(),
                description: Some("Installed by `meterpay serve --emulate-stripe`".to_owned()),
                labels: None,
                api_key: key.to_owned(),
                create_billing_profile: true,
            },
        )
        .await?;
        tracing::info!(app_id = %installed.app.id, namespace = ns, "installed the emulated Stripe app");
        return Ok(installed.app);
    };
    let id = existing.id;
    let endpoint = register_endpoint(
        ctx,
        &client,
        ns,
        id,
        &format!(
            "meterpay-app-{id}-webhook-endpoint-{}",
            crate::ids::new_ulid()
        ),
    )
    .await
    .map_err(stripe_error)?;
    ctx.store
        .set_app_webhook(
            ns,
            id,
            &endpoint.id,
            &ctx.secrets
                .encrypt(&endpoint.secret, &App::webhook_secret_context(id)),
            stripe::api_version(),
            &WEBHOOK_EVENTS.join(","),
        )
        .await?;
    // The emulator keeps its state across restarts: the endpoint of the last
    // start would otherwise keep receiving every event (signed with a secret
    // meterpay no longer holds). One that is already gone is success.
    if let Some(previous) = existing.webhook_endpoint_id.as_deref()
        && previous != endpoint.id
        && let Err(err) = client.delete_webhook_endpoint(previous).await
    {
        tracing::warn!(app_id = %id, endpoint = previous, error = %err, "could not delete the emulated app's previous webhook endpoint");
    }
    Ok(existing)
}
