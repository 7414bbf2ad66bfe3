//! Target profiles: how to publish to and subscribe from a push server, as URL templates in a
//! TOML file, so the same load can be aimed at pushgate or at another server speaking these
//! transports (nchan: `profiles/nchan.toml`).
//!
//! The format is documented in `profiles/pushgate.toml` (the built-in profile) and in
//! `docs/benchmarks.md`.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};
use serde::Deserialize;

use crate::Transport;

/// The built-in profile: pushgate's own routes.
pub(crate) const PUSHGATE: &str = include_str!("../profiles/pushgate.toml");

/// A target profile as written in its file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Profile {
    /// A short name for reports and charts.
    pub(crate) name: String,
    /// `http://host:port` of the server; `--url` overrides it.
    pub(crate) url: String,
    /// A path answered with 200 once the server is up.
    pub(crate) health: Option<String>,
    /// A file holding the server's (master) process id, for CPU and memory figures.
    pub(crate) pid_file: Option<PathBuf>,
    /// A command (program and arguments) that stops the server; with `start_command`, the bench
    /// restarts the server before each transport so each one starts from fresh processes. A
    /// program given as a relative path with a `/` (`"../nchan/stop.sh"`) is taken relative to
    /// the profile file's folder, so a profile and its scripts move together.
    pub(crate) stop_command: Option<Vec<String>>,
    /// A command that starts the server (and writes `pid_file`).
    pub(crate) start_command: Option<Vec<String>>,
    /// How to publish.
    pub(crate) publish: PublishSpec,
    /// How to learn that every subscriber is registered.
    pub(crate) ready: Option<ReadySpec>,
    /// Short polling.
    pub(crate) poll: Option<PollSpec>,
    /// Long polling.
    pub(crate) longpoll: Option<PollSpec>,
    /// Server-Sent Events.
    pub(crate) sse: Option<StreamSpec>,
    /// WebSocket.
    pub(crate) ws: Option<StreamSpec>,
}

/// `[publish]`: a `POST` per message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishSpec {
    /// Path template with `{topic}`.
    pub(crate) path: String,
    /// Body template with `{payload}`.
    pub(crate) body: String,
    /// The `Content-Type` of the body.
    #[serde(default = "json_type")]
    pub(crate) content_type: String,
}

fn json_type() -> String {
    "application/json".to_owned()
}

/// `[ready]`: a page holding a subscriber count.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadySpec {
    /// Path; with `{topic}`, it is fetched once per topic and the counts are summed.
    pub(crate) path: String,
    /// The count is the integer right after this text.
    pub(crate) number_after: String,
}

/// How a poll request names where to continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Resume {
    /// The answer is JSON with a `"cursor":"…"` member, put into `{cursor}` of the next request.
    BodyCursor,
    /// `If-Modified-Since` and `If-None-Match` from the last `Last-Modified` and `ETag`.
    Validators,
}

/// `[poll]` and `[longpoll]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PollSpec {
    /// Path template with `{topic}` and, for `body-cursor`, `{cursor}`.
    pub(crate) path: String,
    /// How to resume.
    pub(crate) resume: Resume,
    /// `{cursor}` of the first request.
    #[serde(default)]
    pub(crate) initial_cursor: String,
    /// With `body-cursor`: also send the last `ETag` in `If-None-Match`.
    #[serde(default)]
    pub(crate) if_none_match: bool,
}

/// `[sse]` and `[ws]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamSpec {
    /// Path template with `{topic}`.
    pub(crate) path: String,
}

/// A loopback HTTP server address taken from a profile's `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Where to connect.
    pub(crate) addr: SocketAddr,
    /// The `Host` header.
    pub(crate) host: String,
}

impl Endpoint {
    /// Parses `http://host:port[/]`; refuses anything off the loopback network.
    pub(crate) fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url.strip_prefix("http://").with_context(|| format!("{url:?}: only http:// URLs"))?;
        let host = rest.trim_end_matches('/');
        ensure!(!host.contains('/'), "{url:?}: give the server's base URL, without a path");
        let with_port = if host.contains(':') { host.to_owned() } else { format!("{host}:80") };
        let addr = with_port
            .to_socket_addrs()
            .with_context(|| format!("{url:?}: cannot resolve"))?
            .find(|addr| addr.is_ipv4())
            .with_context(|| format!("{url:?}: no IPv4 address"))?;
        ensure!(
            is_loopback(addr.ip()),
            "{url:?} is not on 127.0.0.0/8: the bench only loads loopback servers"
        );
        Ok(Self { addr, host: with_port })
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_loopback())
}

impl Profile {
    /// Parses and checks a profile's text.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        let profile: Self = toml::from_str(text)?;
        profile.check()?;
        Ok(profile)
    }

    /// Reads and checks a profile file.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut profile =
            Self::parse(&text).with_context(|| format!("invalid target profile {}", path.display()))?;
        let folder = path.parent().unwrap_or(Path::new("."));
        for command in [&mut profile.start_command, &mut profile.stop_command].into_iter().flatten() {
            if let Some(program) = command.first_mut() {
                *program = beside(folder, program);
            }
        }
        Ok(profile)
    }

    /// The built-in pushgate profile.
    pub(crate) fn pushgate() -> Self {
        // Checked by a unit test; a broken built-in profile is a bug of this crate.
        Self::parse(PUSHGATE).unwrap_or_else(|err| panic!("built-in profile: {err:#}"))
    }

    fn check(&self) -> anyhow::Result<()> {
        Endpoint::parse(&self.url)?;
        ensure!(
            self.start_command.is_some() == self.stop_command.is_some(),
            "start_command and stop_command go together"
        );
        for command in [&self.start_command, &self.stop_command].into_iter().flatten() {
            ensure!(!command.is_empty(), "an empty start_command or stop_command");
        }
        let mut paths = vec![("publish.path", &self.publish.path)];
        for (name, spec) in [("poll", &self.poll), ("longpoll", &self.longpoll)] {
            if let Some(spec) = spec {
                paths.push((name, &spec.path));
                if spec.resume == Resume::BodyCursor {
                    ensure!(
                        spec.path.contains("{cursor}"),
                        "{name}.path needs {{cursor}} with resume = \"body-cursor\""
                    );
                    ensure!(
                        !spec.initial_cursor.is_empty(),
                        "{name}.initial_cursor is needed with body-cursor"
                    );
                }
            }
        }
        for (name, spec) in [("sse", &self.sse), ("ws", &self.ws)] {
            if let Some(spec) = spec {
                paths.push((name, &spec.path));
            }
        }
        for (name, path) in paths {
            ensure!(path.starts_with('/'), "{name}: {path:?} must start with /");
            ensure!(path.contains("{topic}"), "{name}: {path:?} must contain {{topic}}");
        }
        ensure!(self.publish.body.contains("{payload}"), "publish.body must contain {{payload}}");
        if let Some(ready) = &self.ready {
            ensure!(
                ready.path.starts_with('/') && !ready.number_after.is_empty(),
                "ready: path and number_after"
            );
        }
        Ok(())
    }

    /// Whether the profile describes `transport`.
    pub(crate) fn supports(&self, transport: Transport) -> bool {
        match transport {
            Transport::Poll => self.poll.is_some(),
            Transport::Longpoll => self.longpoll.is_some(),
            Transport::Sse => self.sse.is_some(),
            Transport::Ws => self.ws.is_some(),
        }
    }
}

/// `template` with `{topic}` and `{cursor}` (URL-encoded) filled in.
pub(crate) fn fill(template: &str, topic: &str, cursor: &str) -> String {
    template.replace("{topic}", &url_encode(topic)).replace("{cursor}", &url_encode(cursor))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The integer right after `marker` in `text`, if any.
pub(crate) fn number_after(text: &str, marker: &str) -> Option<u64> {
    let start = text.find(marker)? + marker.len();
    let digits: String = text[start..].trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// `program` as the profile in `folder` means it: a relative path with a `/` is relative to the
/// profile's folder; a bare name is looked up on `PATH`, an absolute path is kept.
fn beside(folder: &Path, program: &str) -> String {
    let path = Path::new(program);
    if path.is_relative() && program.contains('/') {
        folder.join(path).to_string_lossy().into_owned()
    } else {
        program.to_owned()
    }
}

/// Refuses a profile that lacks one of the `transports`.
pub(crate) fn require(profile: &Profile, transports: &[Transport]) -> anyhow::Result<()> {
    for transport in transports {
        if !profile.supports(*transport) {
            bail!("the target profile {:?} has no [{}] section", profile.name, transport.name());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_profiles_parse() {
        let pushgate = Profile::pushgate();
        assert_eq!(pushgate.name, "pushgate");
        assert_eq!(pushgate.poll.as_ref().map(|p| p.resume), Some(Resume::BodyCursor));
        assert!(Transport::ALL.iter().all(|t| pushgate.supports(*t)));
        let nchan = Profile::parse(include_str!("../profiles/nchan.toml")).unwrap();
        assert_eq!(nchan.longpoll.as_ref().map(|p| p.resume), Some(Resume::Validators));
        assert_eq!(nchan.pid_file.as_deref(), Some(Path::new("/tmp/nchan-peer/nginx.pid")));
        assert_eq!(nchan.start_command.as_deref(), Some(&["../nchan/start.sh".to_owned()][..]));
        // The scripts are found beside the profile, wherever the bench runs from.
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let loaded = Profile::load(&folder.join("nchan.toml")).unwrap();
        for command in [&loaded.start_command, &loaded.stop_command] {
            let program = command.as_ref().and_then(|c| c.first()).unwrap();
            assert!(Path::new(program).is_file(), "{program} is not a file");
        }
        assert_eq!(beside(&folder, "nginx"), "nginx");
        assert_eq!(beside(&folder, "/usr/bin/true"), "/usr/bin/true");
        assert_eq!(Endpoint::parse(&nchan.url).unwrap().addr, "127.0.0.1:8091".parse().unwrap());
    }

    #[test]
    fn bad_profiles_are_refused_with_a_reason() {
        let minimal = "name = \"x\"\nurl = \"http://127.0.0.1:1\"\n[publish]\npath = \"/p/{topic}\"\nbody = \"{payload}\"\n";
        assert!(Profile::parse(minimal).is_ok());
        let no_topic = minimal.replace("/p/{topic}", "/p");
        assert!(format!("{:#}", Profile::parse(&no_topic).unwrap_err()).contains("{topic}"));
        let remote = minimal.replace("127.0.0.1", "192.0.2.1");
        assert!(format!("{:#}", Profile::parse(&remote).unwrap_err()).contains("127.0.0.0/8"));
        let typo = format!("{minimal}[sse]\npaht = \"/s/{{topic}}\"\n");
        assert!(Profile::parse(&typo).is_err());
        let half_restart = format!("stop_command = [\"true\"]\n{minimal}");
        assert!(format!("{:#}", Profile::parse(&half_restart).unwrap_err()).contains("go together"));
        let no_cursor = format!("{minimal}[poll]\npath = \"/poll/{{topic}}\"\nresume = \"body-cursor\"\n");
        assert!(format!("{:#}", Profile::parse(&no_cursor).unwrap_err()).contains("{cursor}"));
        let profile = Profile::parse(minimal).unwrap();
        assert!(require(&profile, &[Transport::Sse]).is_err());
    }

    #[test]
    fn templates_are_filled_and_encoded() {
        assert_eq!(
            fill("/v1/poll?topic={topic}&cursor={cursor}", "a.b", "1f-2"),
            "/v1/poll?topic=a.b&cursor=1f-2"
        );
        assert_eq!(fill("/x/{topic}?c={cursor}", "t", "a b/c"), "/x/t?c=a%20b%2Fc");
        assert_eq!(number_after("{\"by_transport\":{},\"total\":42}", "\"total\":"), Some(42));
        assert_eq!(number_after("channels: 3\nsubscribers: 1800\n", "subscribers: "), Some(1800));
        assert_eq!(number_after("nothing", "subscribers: "), None);
    }
}
