//! Customer portal sessions: the options a client may give (both APIs take
//! the same three; v3 under `stripe_options`, v1 at the top level).

/// Checked by `service::portal` before any network call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortalOptions {
    pub configuration_id: Option<String>,
    pub locale: Option<String>,
    pub return_url: Option<String>,
}
