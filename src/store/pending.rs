//! TEMPORARY: stand-ins for the billing-profile store functions being built
//! on the `billing-profiles` branch; removed when it merges.

use ulid::Ulid;

use super::Store;
use crate::error::Result;

impl Store {
    pub async fn create_default_profile_for_app(
        &self,
        _namespace: &str,
        _app_id: Ulid,
        _name: &str,
    ) -> Result<Option<()>> {
        Ok(None)
    }

    pub async fn profiles_using_app(
        &self,
        _namespace: &str,
        _app_id: Ulid,
    ) -> Result<Vec<(Ulid, String)>> {
        Ok(Vec::new())
    }
}

/// Stand-in for `crate::billing::profile::BillingProfile`.
#[derive(Debug, Clone)]
pub struct BillingProfile {
    pub id: Ulid,
    pub payment_app_id: Ulid,
    pub deleted_at: Option<time::OffsetDateTime>,
}

impl Store {
    pub async fn get_profile(&self, _namespace: &str, _id: Ulid) -> Result<Option<BillingProfile>> {
        Ok(None)
    }

    pub async fn default_profile(&self, _namespace: &str) -> Result<Option<BillingProfile>> {
        Ok(None)
    }
}
