use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{CommandFactory, Parser};
use domain::limits::Limits;

use super::*;
use crate::cli::{Cli, Command};
use engine::alerts::notify::DestinationKind;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn file(text: &str) -> ConfigFile {
    ConfigFile::parse(text, "t.toml").unwrap()
}

/// `throughline up` with this file and no flags.
fn up(text: &str) -> Result<UpConfig, ConfigError> {
    UpCommand::default().load(&file(text))
}

#[test]
fn cookies_are_secure_under_tls_or_behind_an_https_proxy() {
    let secure = |text: &str| {
        let c = up(text).unwrap().console;
        c.settings.secure_cookies(c.tls.is_some())
    };
    assert!(!secure(""));
    assert!(secure(
        "external_url = \"https://throughline.plant1.example\"\n"
    ));
    assert!(!secure("external_url = \"http://10.0.0.5:8080\"\n"));
}

#[test]
fn flags_beat_the_file_and_the_file_beats_defaults() {
    let file = file(
        "otlp_grpc_addr = \"127.0.0.1:5317\"\nconsole_addr = \"127.0.0.1:9090\"\n\
         [keys.aliases.erp]\n\"sap.sales_order\" = \"order\"\n",
    );
    let flags = UpCommand {
        console: ConsoleArgs {
            console_addr: Some(addr("127.0.0.1:9999")),
            ..Default::default()
        },
        ..Default::default()
    };
    let s = flags.load(&file).unwrap();
    let ingest = &s.collector.ingest;
    assert_eq!(ingest.grpc_addr, addr("127.0.0.1:5317"));
    assert_eq!(s.console.settings.addr, addr("127.0.0.1:9999"));
    assert_eq!(ingest.http_addr, addr("127.0.0.1:4318"));
    assert_eq!(s.collector.clickhouse.database, "throughline");
    assert_eq!(s.collector.clickhouse.url, None);
    assert_eq!(ingest.spool_dir, PathBuf::from("./data/spool"));
    assert_eq!(ingest.spool_max_bytes, 1 << 30);
    assert_eq!(ingest.insert_interval, Duration::from_secs(1));
    assert!(s.collector.keys.is_key_attribute("erp", "sap.sales_order"));
}

#[test]
fn the_spool_follows_the_data_dir_unless_set() {
    let s = up("data_dir = \"/var/lib/tl\"\nspool_max_bytes = 2097152\n").unwrap();
    assert_eq!(
        s.collector.ingest.spool_dir,
        PathBuf::from("/var/lib/tl/spool")
    );
    assert_eq!(s.collector.ingest.spool_max_bytes, 2 << 20);
    let flags = CollectorCommand {
        collector: CollectorArgs {
            spool_dir: Some("/fast/spool".into()),
            spool_max_bytes: Some(10),
            ..Default::default()
        },
        ..Default::default()
    };
    let err = flags.load(&ConfigFile::default()).unwrap_err();
    assert!(err.to_string().contains("spool_max_bytes 10"), "{err}");
}

#[test]
fn the_insert_interval_is_a_duration_of_at_most_a_minute() {
    let s = up("insert_interval = \"250ms\"\n").unwrap();
    assert_eq!(
        s.collector.ingest.insert_interval,
        Duration::from_millis(250)
    );
    let err = up("insert_interval = \"5m\"\n").unwrap_err();
    assert!(err.to_string().contains("at most 60s"), "{err}");
    let err = up("insert_interval = \"soon\"\n").unwrap_err();
    assert!(err.to_string().contains("write it like 0s, 500ms"), "{err}");
    let s = up("insert_interval = \"0s\"\n").unwrap();
    assert_eq!(s.collector.ingest.insert_interval, Duration::ZERO);
}

#[test]
fn limits_default_to_the_sdk_limits_and_are_checked() {
    let s = up("").unwrap();
    assert_eq!(s.collector.ingest.limits, Limits::default());
    assert_eq!(s.collector.ingest.limits.max_attributes, 128);
    let s = up("[limits]\nmax_attributes = 64\n").unwrap();
    assert_eq!(s.collector.ingest.limits.max_attributes, 64);
    assert_eq!(s.collector.ingest.limits.max_value_bytes, 4096);
    let err = up("[limits]\nmax_value_bytes = 100\n").unwrap_err();
    assert!(err.to_string().contains("at least 1024"), "{err}");
    // A key the section does not have is refused by whoever reads it.
    let err = up("[limits]\nmax_attrs = 1\n").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("config file t.toml: "), "{text}");
    assert!(text.contains("max_attrs"), "{text}");
}

#[test]
fn unknown_keys_are_an_error_naming_the_file_and_key() {
    let err =
        ConfigFile::parse("otlp_grpc_adr = \"127.0.0.1:1\"\n", "throughline.toml").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("config file throughline.toml: "), "{text}");
    assert!(text.contains("unknown field `otlp_grpc_adr`"), "{text}");
    assert!(text.contains("line 1"), "{text}");
    assert!(text.contains("`otlp_grpc_addr`"), "{text}");
    // Every component's keys are known to every subcommand: the file is
    // shared, even when one subcommand does not read them.
    let every = "otlp_grpc_addr = \"127.0.0.1:1\"\nconsole_addr = \"127.0.0.1:2\"\n\
                 clickhouse_url = \"http://a:8123\"\ndata_dir = \"d\"\nprocesses_dir = \"p\"\n\
                 correlator_interval = \"1s\"\nalerts_dir = \"a\"\nalerts_interval = \"1s\"\n\
                 external_url = \"http://x\"\ntls_cert = \"c\"\ntls_key = \"k\"\nlog_format = \"json\"\n\
                 [keys]\n[events]\n[limits]\n[[tokens]]\n[[users]]\n[[api_keys]]\n[[receivers]]\n";
    ConfigFile::parse(every, "t.toml").unwrap();
}

#[test]
fn a_wrong_value_says_its_line() {
    let err = up("\n\nalerts_interval = 5\n").unwrap_err().to_string();
    assert!(err.starts_with("config file t.toml: "), "{err}");
    assert!(err.contains("line 3"), "{err}");
    let err = up("otlp_http_addr = \"here\"\n").unwrap_err().to_string();
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn receivers_and_alert_settings() {
    let s = up(
        "alerts_interval = \"10s\"\n[[receivers]]\nname = \"oncall\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9093/hook\"\n\
         [[receivers]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T/B/X\"\n",
    )
    .unwrap();
    let (_, alerts) = s.correlator.alerts.unwrap();
    assert_eq!(alerts.interval, Duration::from_secs(10));
    assert_eq!(alerts.repeat_interval, Duration::from_secs(4 * 3600));
    assert_eq!(alerts.external_url, "http://127.0.0.1:8080");
    assert_eq!(alerts.destinations.len(), 2);
    let err =
        up("[[receivers]]\nname = \"x\"\nkind = \"pager\"\nurl = \"http://a\"\n").unwrap_err();
    assert!(err.to_string().contains("pager"), "{err}");
    let err =
        up("[[receivers]]\nname = \"x\"\nkind = \"webhook\"\nurl = \"ftp://a\"\n").unwrap_err();
    assert!(err.to_string().contains("http:// or https://"), "{err}");
}

/// `alertmanager` takes a list of base URLs and basic or bearer auth; the
/// old kind `slack` still works, with a deprecation said at start.
#[test]
fn alertmanager_receivers_and_the_old_kind_names() {
    let s = up(
        "alerts_resend_delay = \"10s\"\n\
         [[receivers]]\nname = \"am\"\nkind = \"alertmanager\"\n\
         url = [\"http://am1:9093\", \"https://am2:9093/\"]\nbasic_auth = { username = \"tl\", password = \"pw\" }\n\
         [[receivers]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T/B/X\"\n\
         [[receivers]]\nname = \"chat2\"\nkind = \"slack_webhook\"\nurl = \"https://hooks.slack.com/services/T/B/Y\"\nbearer_token = \"t\"\n",
    )
    .unwrap();
    let (_, alerts) = s.correlator.alerts.unwrap();
    assert_eq!(alerts.resend_delay, Duration::from_secs(10));
    let am = &alerts.destinations[0];
    assert_eq!(am.kind, DestinationKind::Alertmanager);
    assert_eq!(
        am.targets(),
        [
            "http://am1:9093/api/v2/alerts",
            "https://am2:9093/api/v2/alerts"
        ]
    );
    assert_eq!(am.basic_auth.as_ref().unwrap().username, "tl");
    assert!(!format!("{am:?}").contains("pw"), "{am:?}");
    assert_eq!(am.deprecation(), None);
    let chat = &alerts.destinations[1];
    assert_eq!(chat.kind, DestinationKind::SlackWebhook);
    assert!(chat
        .deprecation()
        .unwrap()
        .contains("kind `slack` is deprecated; write kind = \"slack_webhook\""));
    assert_eq!(alerts.destinations[2].deprecation(), None);
    let err =
        up("[[receivers]]\nname = \"x\"\nkind = \"webhook\"\nurl = [\"http://a\"]\n").unwrap_err();
    assert!(err.to_string().contains("alertmanager only"), "{err}");
    let err = up(
        "[[receivers]]\nname = \"x\"\nkind = \"alertmanager\"\nurl = \"http://a\"\n\
                  bearer_token = \"t\"\nbasic_auth = { username = \"u\", password = \"p\" }\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("not both"), "{err}");
}

/// A rule file with a mistake stops the start, with its file and line.
#[test]
fn a_bad_alert_rule_file_is_refused_at_start() {
    let dir = broken_rules();
    let flags = UpCommand {
        rules: RulesArgs {
            alerts_dir: Some(dir.path().to_path_buf()),
            plant_link_timeout: None,
        },
        ..Default::default()
    };
    let err = flags.load(&ConfigFile::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:4: rule `quiet`: silent_for `ten minutes` is not a duration; write it like 90s, 15m, 4h, 2d or 1h30m",
            dir.path().join("plant.toml").display()
        )
    );
}

/// A directory with an alert rule file that does not load.
fn broken_rules() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plant.toml"),
        "[[rules]]\nid = \"quiet\"\nkind = \"system_silence\"\nsilent_for = \"ten minutes\"\n",
    )
    .unwrap();
    dir
}

/// The reported bug: a bad alert rule stopped `throughline migrate`. Each
/// subcommand loads only what it uses.
#[test]
fn each_subcommand_loads_only_what_it_uses() {
    let rules = broken_rules();
    let processes = tempfile::tempdir().unwrap();
    std::fs::write(
        processes.path().join("p.toml"),
        "id = \"p\"\nkey = \"lot\"\n",
    )
    .unwrap();
    let text = format!(
        "alerts_dir = {:?}\nprocesses_dir = {:?}\ntls_cert = \"/no/such/cert.pem\"\ntls_key = \"/no/such/key.pem\"\n\
         spool_max_bytes = 1\n[[receivers]]\nname = \"x\"\nkind = \"webhook\"\nurl = \"ftp://a\"\n",
        rules.path().display().to_string(),
        processes.path().display().to_string(),
    );
    let file = file(&text);
    // Nothing of it is ClickHouse's.
    MigrateCommand::default().load(&file).unwrap();
    // The others refuse what they use.
    let err = CollectorCommand::default()
        .load(&file)
        .unwrap_err()
        .to_string();
    assert!(err.contains("spool_max_bytes 1 "), "{err}");
    let err = CorrelatorCommand::default()
        .load(&file)
        .unwrap_err()
        .to_string();
    assert!(err.contains("key `lot` is not a known key type"), "{err}");
    let err = ConsoleCommand::default()
        .load(&file)
        .unwrap_err()
        .to_string();
    assert!(err.contains("key `lot`"), "{err}");

    // Without the broken processes: the correlator reads the rules only with
    // --alerts, the collector never.
    let file = self::file(&format!(
        "alerts_dir = {:?}\n",
        rules.path().display().to_string()
    ));
    CollectorCommand::default().load(&file).unwrap();
    CorrelatorCommand::default().load(&file).unwrap();
    let with_alerts = CorrelatorCommand {
        evaluate_alerts: true,
        ..Default::default()
    };
    let err = with_alerts.load(&file).unwrap_err().to_string();
    assert!(err.contains("silent_for `ten minutes`"), "{err}");
    // The console shows the rules, so it reads them.
    assert!(ConsoleCommand::default().load(&file).is_err());
}

/// Each subcommand takes only its components' flags.
#[test]
fn each_subcommand_accepts_only_its_flags() {
    let parse = |args: &[&str]| Cli::try_parse_from([&["throughline"], args].concat());
    for (command, refused) in [
        ("migrate", "--alerts-dir"),
        ("migrate", "--processes-dir"),
        ("migrate", "--tls-cert"),
        ("migrate", "--spool-dir"),
        ("collector", "--alerts-dir"),
        ("collector", "--processes-dir"),
        ("collector", "--console-addr"),
        ("console", "--spool-dir"),
        ("console", "--otlp-grpc-addr"),
        ("console", "--alerts-interval"),
        ("correlator", "--tls-cert"),
        ("correlator", "--spool-dir"),
        ("correlator", "--console-addr"),
    ] {
        let err = parse(&[command, refused, "x"]).unwrap_err();
        assert_eq!(
            err.kind(),
            clap::error::ErrorKind::UnknownArgument,
            "{command} {refused}"
        );
    }
    let cli = parse(&["migrate", "--clickhouse-database", "a"]).unwrap();
    assert!(matches!(cli.command, Command::Migrate { .. }));
    let cli = parse(&["correlator", "--alerts", "--alerts-dir", "a"]).unwrap();
    match cli.command {
        Command::Correlator { args } => {
            assert!(args.evaluate_alerts);
            assert_eq!(args.rules.alerts_dir, Some(PathBuf::from("a")));
        }
        _ => panic!("not the correlator"),
    }
}

/// What `--help` says the defaults are is what they are.
#[test]
fn help_states_the_defaults_in_force() {
    let mut cli = Cli::command();
    let help = cli
        .find_subcommand_mut("up")
        .unwrap()
        .render_long_help()
        .to_string();
    let s = up("").unwrap();
    let (_, alerts) = s.correlator.alerts.clone().unwrap();
    for (default, text) in [
        (s.collector.ingest.grpc_addr.to_string(), "127.0.0.1:4317"),
        (s.collector.ingest.http_addr.to_string(), "127.0.0.1:4318"),
        (s.console.settings.addr.to_string(), "127.0.0.1:8080"),
        (s.collector.ingest.max_request_bytes.to_string(), "16777216"),
        (s.collector.ingest.spool_max_bytes.to_string(), "1073741824"),
        (s.collector.clickhouse.database.clone(), "throughline"),
        (s.data_dir.display().to_string(), "./data"),
        (
            format!("{}s", s.correlator.correlator.interval.as_secs()),
            "15s",
        ),
        (
            format!("{}d", s.correlator.correlator.horizon.as_secs() / 86_400),
            "7d",
        ),
        (format!("{}s", alerts.interval.as_secs()), "30s"),
        (
            format!("{}h", alerts.repeat_interval.as_secs() / 3600),
            "4h",
        ),
    ] {
        assert_eq!(default, text);
        assert!(
            help.contains(&format!("[default: {text}]")),
            "{text}:\n{help}"
        );
    }
    assert_eq!(s.correlator.processes.dir, None);
    assert!(s.correlator.processes.processes.list.is_empty());
    assert!(help.contains("[default: none, no processes]"), "{help}");
    assert!(help.contains("[default: none, no rules]"), "{help}");
    assert!(help.contains("[env: THROUGHLINE_PROCESSES_DIR="), "{help}");
    assert_eq!(LogFormat::default(), LogFormat::Text);
    assert!(help.contains("[default: text]"), "{help}");
}

/// A PEM certificate and key for `localhost`, written into `dir`.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

fn with_tls(cert: Option<&Path>, key: Option<&Path>) -> Result<UpConfig, ConfigError> {
    let flags = UpCommand {
        tls: TlsArgs {
            tls_cert: cert.map(Path::to_path_buf),
            tls_key: key.map(Path::to_path_buf),
        },
        ..Default::default()
    };
    flags.load(&ConfigFile::default())
}

#[test]
fn tls_files_are_read_and_checked_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let s = with_tls(Some(&cert), Some(&key)).unwrap();
    assert!(s.collector.tls.is_some());
    assert!(s.console.tls.is_some());
    assert_eq!(s.console.settings.external_url, "https://127.0.0.1:8080");
    assert!(with_tls(None, None).unwrap().console.tls.is_none());

    // The file's keys work as well as the flags.
    let text = format!(
        "tls_cert = {:?}\ntls_key = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    assert!(up(&text).unwrap().collector.tls.is_some());
}

#[test]
fn tls_settings_say_which_file_is_wrong_and_what_to_give() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let err = |cert: Option<&Path>, key: Option<&Path>| {
        TlsArgs {
            tls_cert: cert.map(Path::to_path_buf),
            tls_key: key.map(Path::to_path_buf),
        }
        .load()
        .unwrap_err()
        .to_string()
    };
    let both = "tls_cert and tls_key go together: give both (the certificate and its private key, PEM files) to serve TLS, or neither";
    assert_eq!(err(Some(&cert), None), both);
    assert_eq!(err(None, Some(&key)), both);

    let missing = dir.path().join("missing.pem");
    let text = err(Some(&missing), Some(&key));
    assert!(
        text.starts_with(&format!("cannot read tls_cert {}: ", missing.display())),
        "{text}"
    );
    assert!(text.ends_with("; give the path of a PEM file"), "{text}");

    // The certificate given as the key, the key given as the certificate.
    assert_eq!(
        err(Some(&cert), Some(&cert)),
        format!("tls_key {} holds no private key; give the PEM file with the certificate's PKCS#8, PKCS#1 or SEC1 key", cert.display())
    );
    assert_eq!(
        err(Some(&key), Some(&key)),
        format!("tls_cert {} holds no certificate; give the PEM file with the server certificate (-----BEGIN CERTIFICATE-----), followed by any intermediates", key.display())
    );

    // A broken PEM section says what is wrong with it.
    let broken = dir.path().join("broken.pem");
    std::fs::write(&broken, "-----BEGIN PRIVATE KEY-----\nAAAA\n").unwrap();
    let text = err(Some(&cert), Some(&broken));
    assert!(
        text.starts_with(&format!(
            "tls_key {} holds no private key that can be read (",
            broken.display()
        )),
        "{text}"
    );

    // A key of another certificate.
    let other = tempfile::tempdir().unwrap();
    let (_, other_key) = certificate(other.path());
    let text = err(Some(&cert), Some(&other_key));
    assert!(
        text.starts_with(&format!(
            "tls_key {} does not fit tls_cert {} (",
            other_key.display(),
            cert.display()
        )),
        "{text}"
    );
    assert!(
        text.ends_with("give the key the certificate was issued for"),
        "{text}"
    );
}

#[test]
fn bad_values_say_what_to_use() {
    let migrate = |clickhouse: ClickHouseArgs| {
        MigrateCommand {
            clickhouse,
            ..Default::default()
        }
        .load(&ConfigFile::default())
        .map_err(|e| e.to_string())
    };
    let err = migrate(ClickHouseArgs {
        clickhouse_url: Some("127.0.0.1:8123".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.contains("like http://127.0.0.1:8123"), "{err}");
    let err = migrate(ClickHouseArgs {
        clickhouse_database: Some("a-b; DROP".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.contains("is not a plain name"), "{err}");
    let err = up("correlator_interval = \"0s\"\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "correlator_interval `0s` is not a duration; write it like 500ms, 15s, 1m or 7d"
    );
}

#[test]
fn the_definitions_hint_names_what_is_missing() {
    use crate::run::definitions_hint;
    let p = Path::new("p");
    assert_eq!(definitions_hint(Some(p), Some(p)), None);
    let both = definitions_hint(None, None).unwrap();
    assert!(
        both.contains("--processes-dir DIR and --alerts-dir DIR"),
        "{both}"
    );
    let rules = definitions_hint(Some(p), None).unwrap();
    assert!(
        rules.starts_with("no alert rules: add them with --alerts-dir DIR"),
        "{rules}"
    );
}

#[test]
fn the_log_format_is_text_unless_json_is_asked_for() {
    let log = |text: &str, flag: Option<LogFormat>| {
        file(text)
            .merged(LogArgs { log_format: flag })
            .map(LogArgs::settings)
            .map_err(|e| e.to_string())
    };
    assert_eq!(log("", None), Ok(LogFormat::Text));
    assert_eq!(log("log_format = \"json\"\n", None), Ok(LogFormat::Json));
    assert_eq!(
        log("log_format = \"json\"\n", Some(LogFormat::Text)),
        Ok(LogFormat::Text)
    );
    let err = log("log_format = \"xml\"\n", None).unwrap_err();
    assert!(
        err.contains("unknown variant `xml`, expected `text` or `json`"),
        "{err}"
    );
    // Every serving subcommand takes the flag.
    for command in ["up", "collector", "console", "correlator", "migrate"] {
        let cli = Cli::try_parse_from(["throughline", command, "--log-format", "json"]).unwrap();
        let format = match cli.command {
            Command::Up { args } => args.log,
            Command::Collector { args } => args.log,
            Command::Console { args } => args.log,
            Command::Correlator { args } => args.log,
            Command::Migrate { args } => args.log,
            _ => unreachable!(),
        };
        assert_eq!(format.log_format, Some(LogFormat::Json), "{command}");
    }
    let err = Cli::try_parse_from(["throughline", "migrate", "--log-format", "xml"]).unwrap_err();
    assert!(
        err.to_string().contains("[possible values: text, json]"),
        "{err}"
    );
}

#[test]
fn connection_limits_default_safely_and_are_checked() {
    use ::collector::connections::ConnectionLimits;
    let s = up("").unwrap();
    assert_eq!(s.collector.connections, ConnectionLimits::default());
    assert_eq!(s.console.connections, ConnectionLimits::default());
    let c = s.collector.connections;
    assert_eq!(c.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.body_read_timeout, Duration::from_secs(30));
    assert_eq!(c.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.max_connections, None);
    let flags = UpCommand {
        listeners: listeners::ListenerArgs {
            body_read_timeout: Some("1m".into()),
            max_connections: Some(200),
            ..Default::default()
        },
        ..Default::default()
    };
    let s = flags
        .load(&file(
            "header_read_timeout = \"5s\"\nidle_timeout = \"2m\"\nmax_connections = 100\n",
        ))
        .unwrap();
    let c = s.console.connections;
    assert_eq!(c.header_read_timeout, Duration::from_secs(5));
    assert_eq!(c.body_read_timeout, Duration::from_secs(60));
    assert_eq!(c.idle_timeout, Duration::from_secs(120));
    assert_eq!(c.max_connections, Some(200));
    let err = up("idle_timeout = \"forever\"\n").unwrap_err();
    assert!(err.to_string().contains("idle_timeout `forever`"), "{err}");
    let err = up("max_connections = 0\n").unwrap_err();
    assert!(err.to_string().contains("at least 1"), "{err}");
}

#[test]
fn clickhouse_timeouts_default_safe_and_are_checked() {
    let c = up("").unwrap().collector.clickhouse;
    assert_eq!(c.timeouts, store::Timeouts::default());
    assert_eq!(
        c.store_config("http://x").timeouts.connect,
        Duration::from_secs(5)
    );
    assert_eq!(
        c.store_config("http://x").timeouts.query,
        Duration::from_secs(30)
    );
    let flags = UpCommand {
        clickhouse: clickhouse::ClickHouseArgs {
            clickhouse_query_timeout: Some("1500ms".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let c = flags
        .load(&file(
            "clickhouse_connect_timeout = \"2s\"\nclickhouse_query_timeout = \"1m\"\n",
        ))
        .unwrap()
        .collector
        .clickhouse;
    assert_eq!(c.timeouts.connect, Duration::from_secs(2));
    assert_eq!(c.timeouts.query, Duration::from_millis(1500));
    assert_eq!(c.compression, store::Compression::Lz4);
    let plain = up("clickhouse_compression = \"none\"\n").unwrap();
    assert_eq!(
        plain
            .collector
            .clickhouse
            .store_config("http://x")
            .compression,
        store::Compression::None
    );
    assert_eq!(plain.collector.clickhouse.cluster, None);
    let on = up("clickhouse_cluster = \"plant\"\n").unwrap();
    assert_eq!(on.collector.clickhouse.cluster.as_deref(), Some("plant"));
    assert!(!on.collector.clickhouse.replicated);
    let replicas = up("clickhouse_cluster = \"plant\"\nclickhouse_replicated = true\n").unwrap();
    assert!(replicas.collector.clickhouse.replicated);
    assert!(replicas
        .collector
        .clickhouse
        .store("http://x:8123")
        .is_replicated());
    let err = up("clickhouse_replicated = true\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("clickhouse_replicated needs clickhouse_cluster"),
        "{err}"
    );
    let err = up("clickhouse_cluster = \"a b\"\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("clickhouse_cluster `a b` is not a plain name"),
        "{err}"
    );
    let err = up("clickhouse_compression = \"gzip\"\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("clickhouse_compression `gzip` is not known; write lz4 or none"),
        "{err}"
    );
    let err = up("clickhouse_connect_timeout = \"0s\"\n").unwrap_err();
    assert!(
        err.to_string().contains(
            "clickhouse_connect_timeout `0s` is not a duration; write it like 500ms, 15s, 1m or 7d"
        ),
        "{err}"
    );
}

#[test]
fn an_edge_collector_forwards_with_its_token_and_plant_and_a_larger_spool() {
    let collector = |text: &str| CollectorCommand::default().load(&file(text));
    let edge = collector(
        "forward_to = \"https://central.example:4318\"\nforward_token = \"tlc_a_b\"\nplant = \"hamburg\"\n",
    )
    .unwrap();
    let forward = edge.forward.expect("forwarding");
    assert_eq!(forward.url, "https://central.example:4318");
    assert_eq!(forward.token.as_deref(), Some("tlc_a_b"));
    assert_eq!(forward.plant.as_deref(), Some("hamburg"));
    assert_eq!(edge.ingest.spool_max_bytes, 10 << 30);
    // A limit of its own stays; a central collector keeps 1 GiB.
    let edge = collector("forward_to = \"http://c:4318\"\nspool_max_bytes = 2097152\n").unwrap();
    assert_eq!(edge.ingest.spool_max_bytes, 2 << 20);
    let central = collector("").unwrap();
    assert!(central.forward.is_none());
    assert_eq!(central.ingest.spool_max_bytes, 1 << 30);

    let err = collector("forward_to = \"central:4318\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("https://central:4318"), "{err}");
    let err = collector("plant = \"hamburg\"\n").unwrap_err().to_string();
    assert!(err.contains("forward_to is not"), "{err}");
    let edge =
        collector("forward_to = \"http://c:4318\"\nspool_when_full = \"drop_oldest\"\n").unwrap();
    assert_eq!(
        edge.forward.unwrap().when_full,
        ::collector::spool::WhenFull::DropOldest
    );
    let err = collector("forward_to = \"http://c:4318\"\nspool_when_full = \"drop\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("drop_oldest"), "{err}");
    let err = collector("forward_to = \"https://c:4318\"\nforward_ca = \"/no/such/ca.pem\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("forward_ca /no/such/ca.pem"), "{err}");
    // The flags: --forward-to, --forward-token, --plant.
    let cli = Cli::try_parse_from([
        "throughline",
        "collector",
        "--forward-to",
        "http://c:4318",
        "--plant",
        "p1",
    ])
    .unwrap();
    let Command::Collector { args } = cli.command else {
        panic!("collector")
    };
    let edge = args.load(&ConfigFile::default()).unwrap();
    assert_eq!(edge.forward.unwrap().plant.as_deref(), Some("p1"));
}

/// `[systems.<name>]` names each system's owning team; a team name that is
/// not one is refused with the section.
#[test]
fn systems_have_owners() {
    let s = up("[systems.mes]\nowner = \"plant-it\"\ncontacts = [\"#plant-it\"]\n[systems.erp]\nowner = \"finance\"\n")
        .unwrap();
    let systems = &s.correlator.processes.processes.systems;
    assert_eq!(systems["mes"].owner, "plant-it");
    assert_eq!(systems["mes"].contacts, ["#plant-it"]);
    assert_eq!(
        s.console.processes.processes.system_owner("erp"),
        Some("finance")
    );
    let err = up("[systems.mes]\nowner = \"Plant IT\"\n").unwrap_err();
    assert!(
        err.to_string().contains("[systems.mes]: owner `Plant IT`"),
        "{err}"
    );
    let err = up("[systems.mes]\nteam = \"x\"\n").unwrap_err();
    assert!(err.to_string().contains("unknown field `team`"), "{err}");
}

/// `correlator_partition`: K/N or a sentence with an example; only 0/N
/// runs the alert evaluator (`up` leaves it out elsewhere, `correlator
/// --alerts` is refused).
#[test]
fn a_correlator_partition_is_k_of_n_and_only_partition_0_runs_alerts() {
    let s = up("").unwrap();
    assert_eq!(s.correlator.correlator.partition.to_string(), "0/1");
    let s = up("correlator_partition = \"1/3\"\n").unwrap();
    assert_eq!(s.correlator.correlator.partition.to_string(), "1/3");
    assert!(s.correlator.alerts.is_none());
    assert!(up("correlator_partition = \"0/3\"\n")
        .unwrap()
        .correlator
        .alerts
        .is_some());
    let err = up("correlator_partition = \"3/3\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`3/3` is not K/N with 0 <= K < N (e.g. `0/2` and `1/2`"),
        "{err}"
    );
    let with_alerts = CorrelatorCommand {
        evaluate_alerts: true,
        ..Default::default()
    };
    let err = with_alerts
        .load(&file("correlator_partition = \"1/2\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("runs once, with partition 0 of 2; drop --alerts here"),
        "{err}"
    );
}
