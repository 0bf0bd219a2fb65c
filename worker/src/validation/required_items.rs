//! `requiredSheets` and `requiredColumns`: alternatives of items that must all be
//! present (the SDK's `validate_required_items`). The CRD always holds a list of lists;
//! one list is the SDK's flat form, several are its alternatives.

use std::collections::HashSet;

use super::pyrepr::{py_list, py_nested};

/// The alternatives that ask for something: an empty one would pass any file, and the
/// CRD refuses it, but a manifest read by the local tools is not checked by the API.
pub fn alternatives(required: &[Vec<String>]) -> impl Iterator<Item = &Vec<String>> {
    required.iter().filter(|group| !group.is_empty())
}

/// The failure message when no alternative is fully present, `None` when one is (or
/// when nothing is asked). `item_type` is "sheets" or "columns". Names are compared
/// exactly (case-sensitive).
pub fn missing_items(
    present: &[String],
    required: &[Vec<String>],
    item_type: &str,
) -> Option<String> {
    let present: HashSet<&str> = present.iter().map(String::as_str).collect();
    let groups: Vec<&Vec<String>> = alternatives(required).collect();
    if groups.is_empty()
        || groups.iter().any(|group| group.iter().all(|item| present.contains(item.as_str())))
    {
        return None;
    }
    let listed = match groups.as_slice() {
        // The SDK's flat rule lists what is missing (in its arbitrary set order; here
        // in the rule's order, without repeats).
        [only] => {
            let mut seen = HashSet::new();
            let missing: Vec<&str> = only
                .iter()
                .map(String::as_str)
                .filter(|item| !present.contains(item) && seen.insert(*item))
                .collect();
            py_list(&missing)
        }
        // Alternatives: the SDK listed the whole rule.
        _ => py_nested(required),
    };
    Some(format!("File doesn't contain the following needed {item_type}: {listed}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    const TABS: [&str; 4] = ["tabvInfo", "tabvCPU", "tabvHost", "tabvCluster"];

    #[test]
    fn a_flat_rule_passes_when_every_item_is_there() {
        let present = strings(&["tabvInfo", "tabvCPU", "tabvHost", "tabvCluster", "someExtraTab"]);
        assert_eq!(missing_items(&present, &[strings(&TABS)], "sheets"), None);
    }

    #[test]
    fn a_flat_rule_lists_the_missing_items() {
        let present = strings(&TABS);
        let message = missing_items(&present, &[strings(&["unrelatedTab"])], "sheets");
        assert_eq!(
            message.as_deref(),
            Some("File doesn't contain the following needed sheets: ['unrelatedTab']")
        );
        let rule = [strings(&["VM", "Host", "Memory", "VM", "Powerstate"])];
        let message = missing_items(&strings(&["VM", "Host"]), &rule, "columns");
        assert_eq!(
            message.as_deref(),
            Some("File doesn't contain the following needed columns: ['Memory', 'Powerstate']")
        );
    }

    #[test]
    fn alternatives_pass_with_any_group_and_list_the_whole_rule_when_none() {
        let rule = [strings(&["vInfo"]), strings(&["tabvInfo"])];
        assert_eq!(missing_items(&strings(&TABS), &rule, "sheets"), None);
        let rule = [strings(&["unrelatedTab"]), strings(&["vInfo", "vCPU"])];
        assert_eq!(
            missing_items(&strings(&TABS), &rule, "sheets").as_deref(),
            Some(
                "File doesn't contain the following needed sheets: [['unrelatedTab'], ['vInfo', 'vCPU']]"
            )
        );
    }

    #[test]
    fn names_are_case_sensitive_and_empty_rules_ask_nothing() {
        let rule = [strings(&["tabvinfo"])];
        assert!(missing_items(&strings(&TABS), &rule, "sheets").is_some());
        assert_eq!(missing_items(&strings(&TABS), &[], "sheets"), None);
        assert_eq!(missing_items(&strings(&TABS), &[Vec::new()], "sheets"), None);
    }
}
