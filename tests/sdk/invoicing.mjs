// meterpay's invoicing through the official OpenMeter JavaScript SDK
// (`@openmeter/sdk`), unchanged: run by tests/api/sdk_js.rs, which installs
// the SDK into target/sdk-js, starts meterpay and the Stripe emulator, and
// asserts on what this prints (one JSON object per line: the step's name and
// the SDK's result, or the HTTP error the SDK threw).
//
//   node invoicing.mjs issue <customerId>    lines → drafts → approve
//   node invoicing.mjs advance <invoiceId>   advance after the draft period
//   node invoicing.mjs decline <customerId>  a declined card: retry, void; delete a draft
//
// Environment: METERPAY_URL, METERPAY_TOKEN, METERPAY_SDK_DIR (the npm prefix).

import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const sdkDir = process.env.METERPAY_SDK_DIR;
const { OpenMeter, isHTTPError } = await import(
  pathToFileURL(join(sdkDir, 'node_modules', '@openmeter', 'sdk', 'dist', 'index.js')).href
);

const om = new OpenMeter({
  baseUrl: process.env.METERPAY_URL,
  apiKey: process.env.METERPAY_TOKEN,
});

function print(step, result) {
  process.stdout.write(JSON.stringify({ step, result }) + '\n');
}

async function step(name, call) {
  try {
    const result = await call();
    print(name, result ?? null);
    return result;
  } catch (error) {
    const detail = isHTTPError(error)
      ? { status: error.status, message: error.message, problem: error.__raw ?? null }
      : { message: String(error?.stack ?? error) };
    process.stdout.write(JSON.stringify({ step: name, error: detail }) + '\n');
    process.exit(1);
  }
}

const october = {
  from: new Date('2026-10-01T00:00:00Z'),
  to: new Date('2026-11-01T00:00:00Z'),
};

const lines = (suffix) => ({
  currency: 'USD',
  lines: [
    {
      name: `Platform fee${suffix}`,
      period: october,
      invoiceAt: october.to,
      price: { type: 'flat', amount: '49.99', paymentTerm: 'in_arrears' },
    },
    {
      name: `API calls${suffix}`,
      description: 'Requests in October',
      metadata: { meter: 'api' },
      period: october,
      invoiceAt: october.to,
      rateCard: {
        price: {
          type: 'tiered',
          mode: 'graduated',
          tiers: [
            { upToAmount: '1000', unitPrice: { type: 'unit', amount: '0.01' } },
            { unitPrice: { type: 'unit', amount: '0.005' } },
          ],
        },
      },
      quantity: '1500.5',
    },
  ],
});

const [phase, id] = process.argv.slice(2);
const invoices = om.billing.invoices;

if (phase === 'issue') {
  // Two drafts: one left for auto-approval, one approved at once.
  await step('createLineItems', () => invoices.createLineItems(id, lines('')));
  const [waiting] = await step('invoicePendingLines', () =>
    invoices.invoicePendingLines({ customerId: id }),
  );
  const got = await step('get', () => invoices.get(waiting.id));
  // A draft's replacement: what `get` returned, with a description and metadata.
  await step('update', () =>
    invoices.update(waiting.id, {
      description: 'October usage',
      metadata: { order: 'PO-42' },
      supplier: got.supplier,
      customer: got.customer,
      workflow: { workflow: got.workflow.workflow },
      lines: got.lines.map((line) => ({
        id: line.id,
        name: line.name,
        description: line.description,
        metadata: line.metadata,
        period: line.period,
        invoiceAt: line.invoiceAt,
        taxConfig: line.taxConfig,
        rateCard: line.rateCard,
        quantity: line.quantity,
      })),
    }),
  );
  await step('createLineItems', () => invoices.createLineItems(id, lines(' (late)')));
  const [second] = await step('invoicePendingLines', () =>
    invoices.invoicePendingLines({ customerId: id }),
  );
  await step('approve', () => invoices.approve(second.id));
  await step('list', () =>
    invoices.list({ customers: [id], expand: ['lines'], orderBy: 'createdAt', order: 'ASC' }),
  );
} else if (phase === 'advance') {
  await step('advance', () => invoices.advance(id));
  await step('get', () => invoices.get(id));
  await step('list', () => invoices.list({ statuses: ['paid'], page: 1, pageSize: 10 }));
} else if (phase === 'decline') {
  // The customer's card is declined: retry (declined again), void; a draft deleted.
  await step('createLineItems', () => invoices.createLineItems(id, lines(' (declined)')));
  const [declined] = await step('invoicePendingLines', () =>
    invoices.invoicePendingLines({ customerId: id }),
  );
  await step('approve', () => invoices.approve(declined.id));
  await step('retry', () => invoices.retry(declined.id));
  await step('void', () =>
    invoices.void(declined.id, {
      action: { percentage: 100, action: { type: 'discard' } },
      reason: 'the customer left',
    }),
  );
  await step('createLineItems', () => invoices.createLineItems(id, lines(' (dropped)')));
  const [dropped] = await step('invoicePendingLines', () =>
    invoices.invoicePendingLines({ customerId: id }),
  );
  await step('delete', () => invoices.delete(dropped.id));
  await step('get', () => invoices.get(dropped.id));
} else {
  process.stderr.write(
    `unknown phase ${phase}: issue <customerId> | advance <invoiceId> | decline <customerId>\n`,
  );
  process.exit(2);
}
