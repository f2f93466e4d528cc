-- wrk -s checkout.lua URL/v1/checkout/sessions: POST setup-mode Checkout Sessions for the customer
-- in $CUSTOMER with the emulator's default key (see bench.sh).
local customer = os.getenv("CUSTOMER") or "cus_missing"
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer sk_test_emulator"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "mode=setup&currency=usd&customer=" .. customer ..
  "&success_url=https%3A%2F%2Fexample.com%2Fok%3Fs%3D%7BCHECKOUT_SESSION_ID%7D" ..
  "&cancel_url=https%3A%2F%2Fexample.com%2Fcancel&metadata%5Baccount%5D=acme"
