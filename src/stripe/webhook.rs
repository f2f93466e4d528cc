//! Verifying Stripe's webhook signatures (`Stripe-Signature: t=…,v1=…`).
