//! Where a provider's API key comes from, in this order:
//!
//! 1. a Supabase Vault secret named `vibe_ft_<provider>_api_key`, read through
//!    `vault.decrypted_secrets` when that view belongs to the `supabase_vault`
//!    extension (a relation of that name made by anyone else, where Vault is
//!    not installed, is ignored: it would receive nobody's key, but hand out
//!    its own, sending every training file to its maker's account);
//! 2. the superuser-only, hidden setting `vibe_ft.<provider>_api_key`;
//! 3. the postmaster's environment: `OPENAI_API_KEY`, `AZURE_OPENAI_API_KEY`,
//!    `TOGETHER_API_KEY`.
//!
//! A key is never a function argument, a column, a log line, an error message
//! or an event: it lives in a [`Secret`] whose `Debug` hides it, and only the
//! HTTP transport reads it. Callers learn where it came from, never what it is.

use crate::core::provider::{Endpoint, Flavor, Secret};
use crate::error::{Result, VibeError};
use crate::gucs;
use pgrx::spi::SpiClient;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Vault,
    Setting,
    Environment,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Vault => "vault",
            Source::Setting => "setting",
            Source::Environment => "environment",
        }
    }
}

fn env_name(flavor: Flavor) -> &'static str {
    flavor.env_key()
}

pub fn vault_secret_name(flavor: Flavor) -> String {
    format!("vibe_ft_{}_api_key", flavor.name())
}

/// The key for a provider and where it came from, or `None` when none is set.
pub fn find(c: &SpiClient<'_>, flavor: Flavor) -> Result<Option<(Secret, Source)>> {
    let has_vault = c
        .select(
            "SELECT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                             WHERE d.classid = 'pg_class'::regclass
                               AND d.objid = to_regclass('vault.decrypted_secrets')
                               AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
                               AND e.extname = 'supabase_vault')",
            None,
            &[],
        )?
        .first()
        .get_one::<bool>()?
        .unwrap_or(false);
    if has_vault {
        let t = c.select(
            "SELECT decrypted_secret FROM vault.decrypted_secrets WHERE name = $1 ORDER BY created_at DESC LIMIT 1",
            None,
            &[vault_secret_name(flavor).as_str().into()],
        )?;
        if let Some(Some(k)) = (!t.is_empty()).then(|| t.first().get_one::<String>().ok().flatten()) {
            if !k.trim().is_empty() {
                return Ok(Some((Secret::new(k.trim()), Source::Vault)));
            }
        }
    }
    if let Some(k) = gucs::configured_key(flavor) {
        return Ok(Some((Secret::new(k.trim()), Source::Setting)));
    }
    if let Ok(k) = std::env::var(env_name(flavor)) {
        if !k.trim().is_empty() {
            return Ok(Some((Secret::new(k.trim()), Source::Environment)));
        }
    }
    Ok(None)
}

/// Everything needed to call a provider, or an error saying what is missing.
pub fn endpoint(c: &SpiClient<'_>, provider: &str) -> Result<Endpoint> {
    let flavor = Flavor::parse(provider).ok_or_else(|| VibeError::Unsupported {
        message: format!("no provider module for '{provider}'"),
        hint: "Providers available: openai, azure, together.".into(),
    })?;
    let base_url = gucs::base_url(flavor).ok_or_else(|| VibeError::Unsupported {
        message: format!("vibe_ft.{}_base_url is not set", flavor.name()),
        hint: "Set it in postgresql.conf (or ALTER SYSTEM) and reload.".into(),
    })?;
    let (key, _) = find(c, flavor)?.ok_or_else(|| VibeError::Unsupported {
        message: format!("no API key for provider '{}'", flavor.name()),
        hint: format!(
            "Store it in Vault as '{}', or set vibe_ft.{}_api_key in postgresql.conf, or {} in the server's environment.",
            vault_secret_name(flavor),
            flavor.name(),
            env_name(flavor)
        ),
    })?;
    Ok(Endpoint {
        flavor,
        base_url,
        key,
        timeout: gucs::http_timeout(),
        max_attempts: 3,
    })
}
