//! The command line itself: upstream's subcommands and defaults.

mod common;

use common::{fails, ok, run, stderr};

#[test]
fn help_lists_the_commands() {
    let top = ok(&["--help"]);
    for cmd in ["create", "sign", "inspect"] {
        assert!(top.contains(cmd), "{top}");
    }
    let create = ok(&["create", "--help"]);
    assert!(
        create.contains("runtime") && create.contains("measured-boot"),
        "{create}"
    );
    let runtime = ok(&["create", "runtime", "--help"]);
    for flag in [
        "--algo",
        "--rootfs",
        "--skip-path",
        "--output",
        "--base-policy",
        "--keyrings",
        "--ima-buf",
        "--allowlist",
        "--excludelist",
        "--ima-measurement-list",
        "--ignored-keyrings",
        "--add-ima-signature-verification-key",
        "--show-legacy-allowlist",
    ] {
        assert!(runtime.contains(flag), "{flag} missing: {runtime}");
    }
    let sign = ok(&["sign", "runtime", "--help"]);
    for flag in [
        "--runtime-policy",
        "--keyfile",
        "--keypath",
        "--backend",
        "--cert-outfile",
    ] {
        assert!(sign.contains(flag), "{flag} missing: {sign}");
    }
}

#[test]
fn usage_errors_exit_2() {
    fails(&[], 2, "Usage");
    fails(&["frobnicate"], 2, "frobnicate");
    fails(&["create"], 2, "Usage");
    fails(
        &["create", "runtime", "--no-such-flag"],
        2,
        "--no-such-flag",
    );
}

#[test]
fn bare_measurement_list_flag_reads_the_running_system_list() {
    let default = "/sys/kernel/security/ima/ascii_runtime_measurements";
    let o = run(&["create", "runtime", "-m"]);
    if std::path::Path::new(default).exists() {
        assert!(o.status.success(), "{}", stderr(&o));
    } else {
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains(default), "{}", stderr(&o));
    }
    // without -m no list is read at all
    ok(&["create", "runtime"]);
}
