//! PCR 7 and PCR 1 variables under the `example` policy: Secure Boot state, the key
//! databases (PK and KEK must be X.509 keys of the reference state, db and vendor_db a
//! subset of it, dbx one SHA-256 list holding at least its entries), shim's authority
//! variables, and boot order/option variables.

use std::collections::HashSet;

use crate::efi::{Guid, SignatureList};
use crate::log::Event;
use crate::policy::refstate::{ExampleRefState, KeyRule};
use crate::policy::violation::Violation;
use crate::view::{Body, SHIM_LOCK_GUID, VarData, VariableView};

use super::collected::{Collected, Once, measured_data};

const X509: Guid = Guid::CERT_X509;
const SHA256: Guid = Guid::CERT_SHA256;

fn variable(e: &Event) -> Result<VariableView<'_>, Violation> {
    match e.view() {
        Body::Variable(v) => Ok(v),
        Body::Empty => Err(Violation::new("has no Event field")),
        Body::Malformed(why) => Err(Violation::new(format!("has malformed data: {why}"))),
        _ => Err(Violation::new("is not a UEFI variable")),
    }
}

fn present(var: &VariableView<'_>) -> Result<(), Violation> {
    match &var.data {
        VarData::Absent => Err(Violation::new(format!(
            "variable {} has no VariableData",
            var.name
        ))),
        VarData::Malformed(why) => Err(Violation::new(format!(
            "variable {} has malformed VariableData: {why}",
            var.name
        ))),
        _ => Ok(()),
    }
}

fn unexpected_variable(var: &VariableView<'_>) -> Violation {
    Violation::new(format!(
        "has unexpected variable ({}, {})",
        var.guid, var.name
    ))
}

pub(super) fn driver_config<'l>(
    rs: &ExampleRefState,
    e: &'l Event,
    seen: &mut Collected<'l>,
) -> Result<(), Violation> {
    measured_data(e)?;
    let var = variable(e)?;
    present(&var)?;
    let global = var.guid == Guid::GLOBAL_VARIABLE;
    let image_db = var.guid == Guid::IMAGE_SECURITY_DATABASE;
    match (global, image_db, var.name.as_str()) {
        (true, _, "SecureBoot") => match var.data {
            VarData::Enabled(on) if on == rs.has_secureboot => Ok(()),
            _ => Err(Violation::new(format!(
                "SecureBoot Enabled is not {:?}",
                if rs.has_secureboot { "Yes" } else { "No" }
            ))
            .component("has_secureboot")),
        },
        (true, _, "PK") => {
            seen.once(Once::Pk)?;
            key_subset(&rs.pk, &var.data, &[X509], "pk")
        }
        (true, _, "KEK") => {
            seen.once(Once::Kek)?;
            key_subset(&rs.kek, &var.data, &[X509], "kek")
        }
        (_, true, "db") => {
            seen.once(Once::Db)?;
            key_subset(&rs.db, &var.data, &[X509, SHA256], "db")
        }
        (_, true, "vendor_db") => {
            seen.once(Once::VendorDb)?;
            key_subset(&rs.vendor_db, &var.data, &[X509, SHA256], "vendor_db")
        }
        (_, true, "dbx") => {
            seen.once(Once::Dbx)?;
            key_superset(&rs.dbx, &var.data)
        }
        _ => Err(unexpected_variable(&var)),
    }
}

fn signature_lists<'d>(data: &'d VarData<'_>) -> Result<&'d [SignatureList], Violation> {
    match data {
        VarData::SignatureLists(Some(lists)) => Ok(lists),
        VarData::SignatureLists(None) => Err(Violation::new(
            "VariableData holds no signature list (the variable is empty)",
        )),
        _ => Err(Violation::new("VariableData is not a signature list")),
    }
}

/// Every list is of an allowed type and every key in it is in `rule`.
fn key_subset(
    rule: &KeyRule,
    data: &VarData<'_>,
    types: &[Guid],
    name: &str,
) -> Result<(), Violation> {
    let Some(allowed) = rule else { return Ok(()) };
    for list in signature_lists(data).map_err(|v| v.component(name))? {
        let ty = list.signature_type;
        if !types.contains(&ty) {
            return Err(
                Violation::new(format!("{name} has a signature list of type {ty}")).component(name),
            );
        }
        for sig in &list.signatures {
            if !allowed.contains(sig.owner, &sig.data) {
                return Err(Violation::new(format!(
                    "{name} key (owner {}, data 0x{}) is not in the reference state's {name}",
                    sig.owner,
                    abbreviate(&sig.data)
                ))
                .component(name));
            }
        }
    }
    Ok(())
}

/// dbx is one SHA-256 list holding at least the reference state's entries.
fn key_superset(rule: &KeyRule, data: &VarData<'_>) -> Result<(), Violation> {
    let Some(required) = rule else { return Ok(()) };
    let lists = signature_lists(data).map_err(|v| v.component("dbx"))?;
    let [list] = lists else {
        return Err(Violation::new(format!(
            "dbx has {} signature lists, the policy expects exactly one",
            lists.len()
        ))
        .component("dbx"));
    };
    if list.signature_type != SHA256 {
        return Err(Violation::new(format!(
            "dbx has a signature list of type {}, the policy expects SHA-256",
            list.signature_type
        ))
        .component("dbx"));
    }
    if let Some((owner, data)) = required.unmatchable.first() {
        return Err(Violation::new(format!(
            "dbx lacks {} of the reference state's entries, e.g. (owner {owner}, data {})",
            required.unmatchable.len(),
            data.chars().take(66).collect::<String>()
        ))
        .component("dbx"));
    }
    let present: HashSet<(Guid, &[u8])> = list
        .signatures
        .iter()
        .map(|s| (s.owner, s.data.as_slice()))
        .collect();
    let mut missing: Vec<(Guid, &[u8])> = required
        .iter()
        .filter(|key| !present.contains(key))
        .collect();
    missing.sort();
    if let Some((owner, data)) = missing.first() {
        return Err(Violation::new(format!(
            "dbx lacks {} of the reference state's entries, e.g. (owner {owner}, data 0x{})",
            missing.len(),
            abbreviate(data)
        ))
        .component("dbx"));
    }
    Ok(())
}

/// At most 32 bytes of `data` as hex, for failure reasons.
fn abbreviate(data: &[u8]) -> String {
    let shown = hex::encode(data.get(..32).unwrap_or(data));
    if data.len() > 32 {
        format!("{shown}…")
    } else {
        shown
    }
}

pub(super) fn authority<'l>(
    rs: &ExampleRefState,
    e: &'l Event,
    seen: &mut Collected<'l>,
) -> Result<(), Violation> {
    let var = variable(e)?;
    present(&var)?;
    let image_db = var.guid == Guid::IMAGE_SECURITY_DATABASE;
    let shim = var.guid == SHIM_LOCK_GUID;
    match (image_db, shim, var.name.as_str()) {
        (true, _, "db") => seen.once(Once::AuthorityDb),
        (true, _, "vendor_db") => {
            measured_data(e)?;
            seen.once(Once::AuthorityVendorDb)?;
            let Some(allowed) = &rs.vendor_db else {
                return Ok(());
            };
            let VarData::Signatures(sigs) = &var.data else {
                return Err(
                    Violation::new("vendor_db VariableData is not a signature list")
                        .component("vendor_db"),
                );
            };
            for sig in sigs {
                if !allowed.contains(sig.owner, &sig.data) {
                    return Err(Violation::new(format!(
                        "vendor_db key (owner {}, data 0x{}) is not in the reference state's vendor_db",
                        sig.owner,
                        abbreviate(&sig.data)
                    ))
                    .component("vendor_db"));
                }
            }
            Ok(())
        }
        (_, true, "SbatLevel") => seen.once(Once::SbatLevel),
        (_, true, "Shim") => seen.once(Once::Shim),
        (_, true, "MokListTrusted") => {
            measured_data(e)?;
            seen.once(Once::MokListTrusted)?;
            match var.data {
                VarData::Enabled(_) => Ok(()),
                _ => Err(Violation::new(
                    "MokListTrusted Enabled is neither Yes nor No",
                )),
            }
        }
        (_, true, "MokListRT") => seen.once(Once::MokListRt),
        _ => Err(unexpected_variable(&var)),
    }
}

pub(super) fn boot_variable(e: &Event) -> Result<(), Violation> {
    let var = variable(e)?;
    present(&var)?;
    let boot_name = var.name == "BootOrder"
        || var
            .name
            .strip_prefix("Boot")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_hexdigit()));
    if var.guid == Guid::GLOBAL_VARIABLE && boot_name {
        Ok(())
    } else {
        Err(unexpected_variable(&var))
    }
}
