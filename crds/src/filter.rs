//! Report filters (SDK `ReportFilter`) and the column and filter type vocabularies
//! shared with data tables.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names;

/// Type of a column's values: string, number, date, bool, json, enum or entity.
// Variant docs are left out on purpose: schemars would turn documented unit variants
// into `oneOf` branches, and the CRD schema wants a plain string enum.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    String,
    Number,
    Date,
    Bool,
    Json,
    Enum,
    Entity,
}

/// A filter operation: equals, contains, in_list, greater_than, greater_or_equal_to,
/// less_than or less_or_equal_to.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FilterType {
    Equals,
    Contains,
    InList,
    GreaterThan,
    GreaterOrEqualTo,
    LessThan,
    LessOrEqualTo,
}

impl FilterType {
    /// Every filter type, in the SDK's order.
    pub const ALL: [FilterType; 7] = [
        FilterType::Equals,
        FilterType::Contains,
        FilterType::InList,
        FilterType::GreaterThan,
        FilterType::GreaterOrEqualTo,
        FilterType::LessThan,
        FilterType::LessOrEqualTo,
    ];
}

impl ColumnType {
    /// The SDK's default `allowed_filters` for a column of this type.
    pub fn default_filters(self) -> Vec<FilterType> {
        use FilterType::*;
        match self {
            ColumnType::String => vec![Equals, Contains],
            ColumnType::Number | ColumnType::Date => {
                vec![Equals, GreaterThan, GreaterOrEqualTo, LessThan, LessOrEqualTo]
            }
            ColumnType::Bool => vec![Equals],
            ColumnType::Enum => vec![Equals, Contains, InList],
            ColumnType::Json | ColumnType::Entity => FilterType::ALL.to_vec(),
        }
    }
}

/// A column the user can filter a report or component on.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportFilter {
    /// Field of the data documents to filter on, e.g. `device_name`.
    #[schemars(length(min = 1))]
    pub column: String,
    /// Type of the column's values. Default: `enum` when allowedValues is set, else
    /// `number` when the column name contains "number", else `string`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_type: Option<ColumnType>,
    /// Filter operations offered for this column. Default depends on the column type:
    /// string: equals, contains; number and date: equals, greater_than,
    /// greater_or_equal_to, less_than, less_or_equal_to; bool: equals; enum: equals,
    /// contains, in_list; json and entity: all seven.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub allowed_filters: Option<Vec<FilterType>>,
    /// The values to choose from, for an enum column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_values: Option<Vec<String>>,
    /// Label shown in the UI. Default: the column name in title case
    /// (`number_of_devices` → "Number Of Devices").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible_name: Option<String>,
}

impl ReportFilter {
    /// The column type after the SDK's inference.
    pub fn effective_column_type(&self) -> ColumnType {
        match (self.column_type, &self.allowed_values) {
            (Some(t), _) => t,
            (None, Some(_)) => ColumnType::Enum,
            // Case-sensitive substring test, as in the SDK.
            (None, None) if self.column.contains("number") => ColumnType::Number,
            (None, None) => ColumnType::String,
        }
    }

    /// The allowed filters, or the default ones of the effective column type.
    pub fn effective_allowed_filters(&self) -> Vec<FilterType> {
        match &self.allowed_filters {
            Some(filters) => filters.clone(),
            None => self.effective_column_type().default_filters(),
        }
    }

    /// The visible name, or the title form of the column.
    pub fn effective_visible_name(&self) -> String {
        self.visible_name.clone().unwrap_or_else(|| names::title(&self.column))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(yaml: &str) -> ReportFilter {
        serde_yaml::from_str(yaml).unwrap()
    }

    // SDK acceptance case 14.
    #[test]
    fn sdk_filter_inference() {
        let result = filter("{column: result, allowedValues: [Verified, Used, Licensed]}");
        assert_eq!(result.effective_column_type(), ColumnType::Enum);
        assert_eq!(
            result.effective_allowed_filters(),
            vec![FilterType::Equals, FilterType::Contains, FilterType::InList]
        );

        let cores = filter(
            "{column: total_number_of_cores, columnType: string, allowedFilters: [equals, in_list]}",
        );
        assert_eq!(cores.effective_column_type(), ColumnType::String);
        assert_eq!(cores.effective_allowed_filters(), vec![FilterType::Equals, FilterType::InList]);
        assert_eq!(cores.effective_visible_name(), "Total Number Of Cores");

        let devices = filter("{column: number_of_devices}");
        assert_eq!(devices.effective_column_type(), ColumnType::Number);
        assert_eq!(devices.effective_allowed_filters().len(), 5);

        let name = filter("{column: device_name, visibleName: Device}");
        assert_eq!(name.effective_column_type(), ColumnType::String);
        assert_eq!(name.effective_visible_name(), "Device");
    }

    #[test]
    fn json_and_entity_allow_everything() {
        assert_eq!(ColumnType::Json.default_filters(), FilterType::ALL.to_vec());
        assert_eq!(ColumnType::Entity.default_filters(), FilterType::ALL.to_vec());
        assert_eq!(ColumnType::Bool.default_filters(), vec![FilterType::Equals]);
    }

    #[test]
    fn wire_names_are_the_sdk_values() {
        let all = serde_json::to_value(FilterType::ALL).unwrap();
        assert_eq!(
            all,
            serde_json::json!([
                "equals",
                "contains",
                "in_list",
                "greater_than",
                "greater_or_equal_to",
                "less_than",
                "less_or_equal_to"
            ])
        );
        let types: Vec<ColumnType> = serde_json::from_value(serde_json::json!([
            "string", "number", "date", "bool", "json", "enum", "entity"
        ]))
        .unwrap();
        assert_eq!(types.len(), 7);
    }
}
