pub(crate) mod auth;
