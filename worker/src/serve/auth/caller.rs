//! Who a request comes from, once its token has verified: the claims we read, and the
//! rules that turn them (with the tenant header) into a [`Caller`].

use serde::Deserialize;

use super::error::{AuthError, TokenProblem};
use super::tenant::TenantId;

/// An authenticated request's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Always set on user routes. On machine routes, the tenant header when one was
    /// sent: a machine token is not bound to a tenant.
    pub tenant: Option<TenantId>,
    /// The token's `sub`.
    pub subject: String,
    /// The token's `plan_type`, e.g. "unlimited" or "free".
    pub plan_type: Option<String>,
    /// The token carries the machine role.
    pub machine: bool,
}

impl Caller {
    /// Quota does not apply to this caller (the SDK's `plan_type == "UNLIMITED"`).
    pub fn unlimited(&self) -> bool {
        self.plan_type.as_deref().is_some_and(|plan| plan.eq_ignore_ascii_case("unlimited"))
    }

    /// The tenant, for a handler on a machine route that needs one.
    pub fn require_tenant(&self) -> Result<&TenantId, AuthError> {
        self.tenant.as_ref().ok_or(AuthError::MissingTenant)
    }
}

/// The claims we read; `exp`, `nbf`, `iss` and `aud` are checked by jsonwebtoken.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Claims {
    /// Read only to know how long a verified token may be kept (a number, as RFC 7519
    /// allows: integer or not).
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    tenants: Option<Vec<String>>,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    plan_type: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    role: Option<String>,
}

impl Claims {
    /// `exp` in whole Unix seconds.
    pub(crate) fn expires_at(&self) -> Option<u64> {
        let exp = self.exp?;
        (exp.is_finite() && exp >= 0.0).then(|| exp.floor() as u64)
    }

    fn is_machine(&self, machine_role: &str) -> bool {
        self.roles.iter().flatten().chain(&self.role).any(|role| role == machine_role)
    }

    /// Exact comparison: ids are checked for charset, never folded, so that two
    /// spellings cannot name one tenant here and two in the database.
    fn grants(&self, tenant: &TenantId) -> bool {
        self.tenants.iter().flatten().chain(&self.tenant_id).any(|t| t == tenant.as_str())
    }

    fn subject(&self) -> Result<String, AuthError> {
        match self.sub.as_deref() {
            Some(sub) if !sub.is_empty() => Ok(sub.to_owned()),
            _ => Err(AuthError::InvalidToken(TokenProblem::MissingClaim("sub".into()))),
        }
    }

    /// A user route: the tenant is required, and must be one of the token's unless the
    /// token is a machine's (the SDK let a machine act for any tenant).
    pub(crate) fn into_user_caller(
        self,
        tenant: TenantId,
        machine_role: &str,
    ) -> Result<Caller, AuthError> {
        let subject = self.subject()?;
        let machine = self.is_machine(machine_role);
        if !machine && !self.grants(&tenant) {
            return Err(AuthError::TenantNotAllowed);
        }
        Ok(Caller { tenant: Some(tenant), subject, plan_type: self.plan_type, machine })
    }

    /// A machine route: the machine role is required, the tenant optional.
    pub(crate) fn into_machine_caller(
        self,
        tenant: Option<TenantId>,
        machine_role: &str,
    ) -> Result<Caller, AuthError> {
        let subject = self.subject()?;
        if !self.is_machine(machine_role) {
            return Err(AuthError::MachineRoleRequired);
        }
        Ok(Caller { tenant, subject, plan_type: self.plan_type, machine: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: serde_json::Value) -> Claims {
        serde_json::from_value(json).expect("claims")
    }

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id).expect("tenant")
    }

    #[test]
    fn a_user_acts_for_one_of_its_tenants() {
        let c =
            claims(serde_json::json!({"sub": "u1", "tenants": ["t1", "t2"], "plan_type": "free"}));
        let caller = c.into_user_caller(tenant("t2"), "machine").expect("allowed");
        assert_eq!(
            caller,
            Caller {
                tenant: Some(tenant("t2")),
                subject: "u1".into(),
                plan_type: Some("free".into()),
                machine: false,
            }
        );
        assert!(!caller.unlimited());
    }

    #[test]
    fn single_tenant_id_claim_counts_too() {
        let c = claims(serde_json::json!({"sub": "u1", "tenant_id": "t1"}));
        assert!(c.into_user_caller(tenant("t1"), "machine").is_ok());
    }

    #[test]
    fn a_user_cannot_act_for_another_tenant() {
        let c = claims(serde_json::json!({"sub": "u1", "tenants": ["t1"], "tenant_id": "t2"}));
        let error = c.into_user_caller(tenant("t3"), "machine").expect_err("refused");
        assert_eq!(error.reason(), "TenantNotAllowed");
        let none = claims(serde_json::json!({"sub": "u1"}));
        assert!(matches!(
            none.into_user_caller(tenant("t1"), "machine"),
            Err(AuthError::TenantNotAllowed)
        ));
    }

    #[test]
    fn tenants_compare_exactly() {
        let c = claims(serde_json::json!({"sub": "u1", "tenants": ["ABC"]}));
        assert!(c.into_user_caller(tenant("abc"), "machine").is_err());
    }

    #[test]
    fn a_machine_acts_for_any_tenant() {
        for role in
            [serde_json::json!({"roles": ["x", "machine"]}), serde_json::json!({"role": "machine"})]
        {
            let mut json = serde_json::json!({"sub": "svc"});
            json.as_object_mut().expect("object").extend(role.as_object().expect("object").clone());
            let caller = claims(json).into_user_caller(tenant("t9"), "machine").expect("machine");
            assert!(caller.machine);
            assert_eq!(caller.tenant, Some(tenant("t9")));
        }
    }

    #[test]
    fn the_machine_role_name_is_configurable() {
        let c = claims(serde_json::json!({"sub": "svc", "role": "machine"}));
        assert!(matches!(
            c.into_machine_caller(None, "robot"),
            Err(AuthError::MachineRoleRequired)
        ));
        let c = claims(serde_json::json!({"sub": "svc", "role": "robot"}));
        assert!(c.into_machine_caller(None, "robot").expect("robot").machine);
    }

    #[test]
    fn machine_routes_need_the_role_and_take_an_optional_tenant() {
        let user = claims(serde_json::json!({"sub": "u1", "tenants": ["t1"]}));
        let error = user.into_machine_caller(Some(tenant("t1")), "machine").expect_err("user");
        assert_eq!(error.reason(), "MachineRoleRequired");
        let machine = claims(serde_json::json!({"sub": "svc", "roles": ["machine"]}));
        let caller = machine.into_machine_caller(None, "machine").expect("machine");
        assert_eq!(caller.tenant, None);
        assert_eq!(caller.require_tenant().expect_err("none").reason(), "MissingTenant");
    }

    #[test]
    fn the_subject_is_required() {
        for json in [
            serde_json::json!({"tenants": ["t1"]}),
            serde_json::json!({"sub": "", "tenants": ["t1"]}),
        ] {
            let error = claims(json).into_user_caller(tenant("t1"), "machine").expect_err("no sub");
            assert_eq!(error.reason(), "MissingClaim");
        }
    }

    #[test]
    fn unlimited_plan_in_any_case() {
        for plan in ["unlimited", "UNLIMITED", "Unlimited"] {
            let caller = Caller {
                tenant: None,
                subject: "s".into(),
                plan_type: Some(plan.into()),
                machine: false,
            };
            assert!(caller.unlimited(), "{plan}");
        }
        let none = Caller { tenant: None, subject: "s".into(), plan_type: None, machine: false };
        assert!(!none.unlimited());
    }
}
