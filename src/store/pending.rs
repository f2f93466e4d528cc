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
