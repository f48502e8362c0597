//! Label and annotation keys shared by every object a session owns; the webhook selects session
//! Pods and Secrets by them, so they are defined once here.

/// Marks every object of a session; its value is the session name.
pub const SESSION: &str = "vdi.kasm.io/session";
/// The template the session was rendered from.
pub const TEMPLATE: &str = "vdi.kasm.io/template";
/// Which part of the session an object is (`desktop`, `auth`, `home`, ...).
pub const COMPONENT: &str = "app.kubernetes.io/component";
/// `app.kubernetes.io/name`, always `vdi-session`.
pub const NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/instance`, the session name.
pub const INSTANCE: &str = "app.kubernetes.io/instance";
/// `app.kubernetes.io/managed-by`, always `vdi-render`.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Annotation carrying the user's email (not a valid label value).
pub const USER_ANNOTATION: &str = "vdi.kasm.io/user";
/// Annotation carrying the session URL.
pub const URL_ANNOTATION: &str = "vdi.kasm.io/url";
/// Annotation on the Pod with the number of GPUs the session was granted, so admission can
/// inject the same limit the renderer would.
pub const GPU_ANNOTATION: &str = "vdi.kasm.io/gpu";

/// Annotation on the session Secret with the session's timeout in seconds: the webhook mints the
/// session's TURN credentials valid for that long.
pub const TIMEOUT_ANNOTATION: &str = "vdi.kasm.io/timeout-seconds";

/// Value of `app.kubernetes.io/name`.
pub const NAME_VALUE: &str = "vdi-session";
/// Value of `app.kubernetes.io/managed-by`.
pub const MANAGED_BY_VALUE: &str = "vdi-render";
/// Component value of the auth Secret; the webhook fills `password` in Secrets carrying it.
pub const COMPONENT_AUTH: &str = "auth";
/// Component value of the desktop Pod.
pub const COMPONENT_DESKTOP: &str = "desktop";
