//! `throughline token create`, `api-key create` and `user add`: make a
//! credential, show its secret once, and print the config lines that hold
//! only its hash.

use collector::auth::secret;
use collector::auth::{TokenConfig, TOKEN_PREFIX};
use serde::Serialize;

use console::auth::{valid_user_name, ApiKeyConfig, Role, UserConfig, API_KEY_PREFIX};

/// Shortest password `user add` takes.
pub const MIN_PASSWORD_CHARS: usize = 12;

#[derive(Serialize)]
struct Lines<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<[&'a TokenConfig; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_keys: Option<[&'a ApiKeyConfig; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    users: Option<[&'a UserConfig; 1]>,
}

fn toml_lines(lines: &Lines) -> String {
    toml::to_string(lines).expect("credential entries are plain TOML")
}

/// A new connector token for `systems`: `(what to print, the token)`.
pub fn token_create(
    systems: &[String],
    name: Option<&str>,
    plant: Option<&str>,
) -> Result<(String, String), String> {
    if systems.is_empty() || systems.iter().any(|s| s.trim().is_empty()) {
        return Err("give the systems the token may write for: --system crm (repeat it for more; `erp-*` for a prefix, `*` for all)".into());
    }
    let (id, token) = secret::generate(TOKEN_PREFIX);
    let entry = TokenConfig {
        id,
        name: name
            .map(str::to_string)
            .unwrap_or_else(|| systems.join("+")),
        systems: systems.to_vec(),
        hash: secret::hash(&token),
        plant: plant.map(str::to_string),
    };
    let text = format!(
        "New connector token for {systems} (shown only now: it cannot be recovered, only replaced):\n\n  {token}\n\n\
         The connector sends it with every request as `Authorization: Bearer <token>`\n\
         (OpenTelemetry exporters: OTEL_EXPORTER_OTLP_HEADERS=\"Authorization=Bearer <token>\").\n\
         Add these lines to the config file and restart the collector:\n\n{lines}",
        systems = systems.join(", "),
        lines = toml_lines(&Lines {
            tokens: Some([&entry]),
            api_keys: None,
            users: None
        })
    );
    Ok((text, token))
}

/// A new API key: `(what to print, the key)`.
pub fn api_key_create(name: &str, role: Role) -> Result<(String, String), String> {
    if name.trim().is_empty() {
        return Err("give the key a name that says who uses it: --name grafana".into());
    }
    let (id, key) = secret::generate(API_KEY_PREFIX);
    let entry = ApiKeyConfig {
        id,
        name: name.to_string(),
        role,
        hash: secret::hash(&key),
    };
    let text = format!(
        "New {role} API key `{name}` (shown only now: it cannot be recovered, only replaced):\n\n  {key}\n\n\
         API clients send it as `Authorization: Bearer <key>` (Prometheus: `authorization: {{ credentials: <key> }}`).\n\
         Add these lines to the config file and restart the console:\n\n{lines}",
        role = role.as_str(),
        lines = toml_lines(&Lines {
            tokens: None,
            api_keys: Some([&entry]),
            users: None
        })
    );
    Ok((text, key))
}

/// The config lines of a user with this password.
pub fn user_add(name: &str, role: Role, password: &str) -> Result<String, String> {
    if !valid_user_name(name) {
        return Err(format!(
            "user name `{name}`: use 1 to 64 letters, digits, `.`, `_`, `-` or `@`"
        ));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > console::auth::MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password is too long: the sign-in form takes at most {} bytes",
            console::auth::MAX_PASSWORD_BYTES
        ));
    }
    let entry = UserConfig {
        name: name.to_string(),
        role,
        password_hash: secret::hash(password),
    };
    Ok(format!(
        "Add these lines to the config file and restart the console; {name} then signs in as {role}:\n\n{lines}",
        role = role.as_str(),
        lines = toml_lines(&Lines {
            tokens: None,
            api_keys: None,
            users: Some([&entry])
        })
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigFile, ConsoleCommand};

    /// What each command prints is a config file the console loads, and
    /// the secret it printed is the one that verifies.
    #[test]
    fn printed_lines_load_and_verify() {
        let (text, token) = token_create(&["crm".into()], None, None).unwrap();
        let (key_text, key) = api_key_create("grafana", Role::Viewer).unwrap();
        let user_text = user_add("ana", Role::Admin, "correct horse battery").unwrap();
        let toml_of = |t: &str| t[t.find("[[").unwrap()..].to_string();
        let file = format!(
            "{}\n{}\n{}",
            toml_of(&text),
            toml_of(&key_text),
            toml_of(&user_text)
        );
        let console = ConsoleCommand::default()
            .load(&ConfigFile::parse(&file, "t.toml").unwrap())
            .unwrap();
        let tokens = &console.auth.configured;
        assert_eq!(tokens[0].systems, ["crm"]);
        assert_eq!(tokens[0].name, "crm");
        assert!(secret::verify(&token, &tokens[0].hash));
        assert!(secret::verify(&key, &console.settings.api_keys[0].hash));
        assert!(secret::verify(
            "correct horse battery",
            &console.settings.users[0].password_hash
        ));
        assert!(text.contains(&token) && !file.contains(&token));
        assert!(user_add("ana", Role::Admin, "short").is_err());
        assert!(user_add("ana", Role::Admin, &"p".repeat(1025)).is_err());
        assert!(user_add("a b", Role::Admin, "long enough password").is_err());
        assert!(token_create(&[], None, None).is_err());
    }
}
