//! A component's `attributes` in the shapes the SDK's attribute builders
//! (`SummaryAttrs`, `PieAttrs`, ...) produce, with their defaults: a description that is
//! not given is the title form of its key, an `icon` that is not given is `null`, and
//! keys the builders do not write are dropped.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ColumnType, ComponentType, names::title};

/// `{"series": [{value_key, value_description, icon}]}` (`SummaryAttrs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryAttributes {
    pub series: Vec<SummaryValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryValue {
    pub value_key: String,
    pub value_description: String,
    pub icon: Option<String>,
}

/// `{label_key, label_description}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelItem {
    pub label_key: String,
    pub label_description: String,
}

/// `{value_key, value_description}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueItem {
    pub value_key: String,
    pub value_description: String,
}

/// One entry of a label/value series: the SDK appends a label and a value per `attr`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LabelOrValue {
    Label(LabelItem),
    Value(ValueItem),
}

/// `{"series": [{label_key, label_description}, {value_key, value_description}, ...]}`
/// (`PieAttrs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PieAttributes {
    pub series: Vec<LabelOrValue>,
}

/// One entry of a horizontal bar series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AxisItem {
    X { xaxis_key: String, xaxis_description: String },
    Y { yaxis_key: String, yaxis_description: String },
}

/// `{"series": [{xaxis_key, xaxis_description}, {yaxis_key, yaxis_description}, ...]}`
/// (`BarHorizontalAttrs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BarHorizontalAttributes {
    pub series: Vec<AxisItem>,
}

/// `{"columns": [{name, prop, type}]}` (`TableAttrs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableAttributes {
    pub columns: Vec<TableColumn>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableColumn {
    pub name: String,
    pub prop: String,
    #[serde(rename = "type")]
    pub column_type: ColumnType,
}

/// One column of a detailed summary: a label (with its icon) or a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DetailColumn {
    Label { label_key: String, label_description: String, icon: Option<String> },
    Value(ValueItem),
}

/// `{"header_columns": [...], "detail_columns": [...]}` (`DetailedSummaryAttrs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetailedSummaryAttributes {
    pub header_columns: Vec<DetailColumn>,
    pub detail_columns: Vec<DetailColumn>,
}

/// `{"series": [{value_key, value_description, type, currency}]}`
/// (`DetailedSummaryV2Attrs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetailedSummaryV2Attributes {
    pub series: Vec<DetailedValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetailedValue {
    pub value_key: String,
    pub value_description: String,
    #[serde(rename = "type")]
    pub value_type: Option<String>,
    pub currency: Option<String>,
}

/// `{key, description}` of a stacked chart's x axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct XAxisItem {
    pub key: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackedSeries {
    pub xaxis: Vec<XAxisItem>,
    pub yaxis: Vec<LabelOrValue>,
}

/// `{"series": {"xaxis": [...], "yaxis": [...]}}` (`StackedBarVerticalAttrs`,
/// `StackedAreaAttrs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackedAttributes {
    pub series: StackedSeries,
}

/// `{category_key, category_label}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryItem {
    pub category_key: String,
    pub category_label: String,
}

/// `{"series": [{label_key, label_description}], "categories": [{category_key,
/// category_label}]}` (`RelationshipGraphAttrs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationshipGraphAttributes {
    pub series: Vec<LabelItem>,
    pub categories: Vec<CategoryItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataNarrativeSeries {
    pub value_key: String,
}

/// `{"series": {"value_key": ...}}` (`DataNarrativeAttrs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataNarrativeAttributes {
    pub series: DataNarrativeSeries,
}

/// A component's `attributes`, by component type. Serializes as the inner shape; the
/// entry's `type` says which it is (see [`ComponentAttributes::from_value`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ComponentAttributes {
    Summary(SummaryAttributes),
    Pie(PieAttributes),
    BarHorizontal(BarHorizontalAttributes),
    Table(TableAttributes),
    DetailedSummary(DetailedSummaryAttributes),
    DetailedSummaryV2(DetailedSummaryV2Attributes),
    StackedBarVertical(StackedAttributes),
    StackedArea(StackedAttributes),
    RelationshipGraph(RelationshipGraphAttributes),
    DataNarrative(DataNarrativeAttributes),
}

type Object = Map<String, Value>;

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Object, String> {
    value.as_object().ok_or_else(|| format!("{path} must be an object"))
}

fn optional_text(item: &Object, key: &str, path: &str) -> Result<Option<String>, String> {
    match item.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{path}.{key} must be a string")),
    }
}

fn required_text(item: &Object, key: &str, path: &str) -> Result<String, String> {
    match optional_text(item, key, path)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(format!("{path}.{key} is required")),
    }
}

/// The description under `key`, else the title form of `of`.
fn description(item: &Object, key: &str, of: &str, path: &str) -> Result<String, String> {
    Ok(optional_text(item, key, path)?.unwrap_or_else(|| title(of)))
}

fn list<'a>(parent: &'a Object, key: &str, path: &str) -> Result<&'a [Value], String> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(format!("{path}.{key} must be a list")),
    }
}

fn non_empty<T>(items: Vec<T>, path: &str) -> Result<Vec<T>, String> {
    if items.is_empty() { Err(format!("{path} needs at least one entry")) } else { Ok(items) }
}

fn each<T>(
    parent: &Object,
    key: &str,
    path: &str,
    item: impl Fn(&Object, &str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    list(parent, key, path)?
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let at = format!("{path}.{key}[{i}]");
            item(object(value, &at)?, &at)
        })
        .collect()
}

fn label_item(item: &Object, path: &str) -> Result<LabelItem, String> {
    let label_key = required_text(item, "label_key", path)?;
    let label_description = description(item, "label_description", &label_key, path)?;
    Ok(LabelItem { label_key, label_description })
}

fn value_item(item: &Object, path: &str) -> Result<ValueItem, String> {
    let value_key = required_text(item, "value_key", path)?;
    let value_description = description(item, "value_description", &value_key, path)?;
    Ok(ValueItem { value_key, value_description })
}

fn label_or_value(item: &Object, path: &str) -> Result<LabelOrValue, String> {
    if item.contains_key("label_key") {
        label_item(item, path).map(LabelOrValue::Label)
    } else if item.contains_key("value_key") {
        value_item(item, path).map(LabelOrValue::Value)
    } else {
        Err(format!("{path} needs label_key or value_key"))
    }
}

fn detail_column(item: &Object, path: &str) -> Result<DetailColumn, String> {
    if item.contains_key("label_key") {
        let LabelItem { label_key, label_description } = label_item(item, path)?;
        let icon = optional_text(item, "icon", path)?;
        Ok(DetailColumn::Label { label_key, label_description, icon })
    } else if item.contains_key("value_key") {
        value_item(item, path).map(DetailColumn::Value)
    } else {
        Err(format!("{path} needs label_key or value_key"))
    }
}

impl ComponentAttributes {
    /// The attributes of a component of type `component_type` from what its spec says
    /// (the SDK's attribute shape), with the SDK builders' defaults filled in and
    /// unknown keys dropped. The error names the first problem and its path, e.g.
    /// `attributes.series[1].value_key is required`.
    pub fn from_spec(component_type: ComponentType, attributes: &Object) -> Result<Self, String> {
        let p = "attributes";
        Ok(match component_type {
            ComponentType::Summary => Self::Summary(SummaryAttributes {
                series: each(attributes, "series", p, |item, path| {
                    let ValueItem { value_key, value_description } = value_item(item, path)?;
                    let icon = optional_text(item, "icon", path)?;
                    Ok(SummaryValue { value_key, value_description, icon })
                })?,
            }),
            ComponentType::Pie => {
                Self::Pie(PieAttributes { series: each(attributes, "series", p, label_or_value)? })
            }
            ComponentType::BarHorizontal => Self::BarHorizontal(BarHorizontalAttributes {
                series: each(attributes, "series", p, |item, path| {
                    if let Some(key) = optional_text(item, "xaxis_key", path)? {
                        let xaxis_description = description(item, "xaxis_description", &key, path)?;
                        Ok(AxisItem::X { xaxis_key: key, xaxis_description })
                    } else if let Some(key) = optional_text(item, "yaxis_key", path)? {
                        let yaxis_description = description(item, "yaxis_description", &key, path)?;
                        Ok(AxisItem::Y { yaxis_key: key, yaxis_description })
                    } else {
                        Err(format!("{path} needs xaxis_key or yaxis_key"))
                    }
                })?,
            }),
            ComponentType::Table => Self::Table(TableAttributes {
                columns: each(attributes, "columns", p, |item, path| {
                    let prop = required_text(item, "prop", path)?;
                    let name = description(item, "name", &prop, path)?;
                    let column_type = match item.get("type") {
                        None | Some(Value::Null) => ColumnType::String,
                        Some(value) => serde_json::from_value(value.clone()).map_err(|_| {
                            format!(
                                "{path}.type must be string, number, date, bool, json, enum or entity"
                            )
                        })?,
                    };
                    Ok(TableColumn { name, prop, column_type })
                })?,
            }),
            ComponentType::DetailedSummary => Self::DetailedSummary(DetailedSummaryAttributes {
                header_columns: non_empty(
                    each(attributes, "header_columns", p, detail_column)?,
                    "attributes.header_columns",
                )?,
                detail_columns: non_empty(
                    each(attributes, "detail_columns", p, detail_column)?,
                    "attributes.detail_columns",
                )?,
            }),
            ComponentType::DetailedSummaryV2 => {
                Self::DetailedSummaryV2(DetailedSummaryV2Attributes {
                    series: each(attributes, "series", p, |item, path| {
                        let ValueItem { value_key, value_description } = value_item(item, path)?;
                        Ok(DetailedValue {
                            value_key,
                            value_description,
                            value_type: optional_text(item, "type", path)?,
                            currency: optional_text(item, "currency", path)?,
                        })
                    })?,
                })
            }
            ComponentType::StackedBarVertical | ComponentType::StackedArea => {
                let empty = Object::new();
                let series = match attributes.get("series") {
                    None | Some(Value::Null) => &empty,
                    Some(value) => object(value, "attributes.series")?,
                };
                let path = "attributes.series";
                let stacked = StackedAttributes {
                    series: StackedSeries {
                        xaxis: non_empty(
                            each(series, "xaxis", path, |item, at| {
                                let key = required_text(item, "key", at)?;
                                let description = description(item, "description", &key, at)?;
                                Ok(XAxisItem { key, description })
                            })?,
                            "attributes.series.xaxis",
                        )?,
                        yaxis: non_empty(
                            each(series, "yaxis", path, label_or_value)?,
                            "attributes.series.yaxis",
                        )?,
                    },
                };
                if component_type == ComponentType::StackedArea {
                    Self::StackedArea(stacked)
                } else {
                    Self::StackedBarVertical(stacked)
                }
            }
            ComponentType::RelationshipGraph => {
                Self::RelationshipGraph(RelationshipGraphAttributes {
                    series: non_empty(
                        each(attributes, "series", p, label_item)?,
                        "attributes.series",
                    )?,
                    categories: non_empty(
                        each(attributes, "categories", p, |item, path| {
                            let category_key = required_text(item, "category_key", path)?;
                            let category_label =
                                description(item, "category_label", &category_key, path)?;
                            Ok(CategoryItem { category_key, category_label })
                        })?,
                        "attributes.categories",
                    )?,
                })
            }
            ComponentType::DataNarrative => {
                let series =
                    object(attributes.get("series").unwrap_or(&Value::Null), "attributes.series")?;
                Self::DataNarrative(DataNarrativeAttributes {
                    series: DataNarrativeSeries {
                        value_key: required_text(series, "value_key", "attributes.series")?,
                    },
                })
            }
        })
    }

    /// Reads attributes of `component_type` in the registry's shape (the inverse of
    /// serializing them).
    pub fn from_value(
        component_type: ComponentType,
        value: Value,
    ) -> Result<Self, serde_json::Error> {
        use serde_json::from_value;
        Ok(match component_type {
            ComponentType::Summary => Self::Summary(from_value(value)?),
            ComponentType::Pie => Self::Pie(from_value(value)?),
            ComponentType::BarHorizontal => Self::BarHorizontal(from_value(value)?),
            ComponentType::Table => Self::Table(from_value(value)?),
            ComponentType::DetailedSummary => Self::DetailedSummary(from_value(value)?),
            ComponentType::DetailedSummaryV2 => Self::DetailedSummaryV2(from_value(value)?),
            ComponentType::StackedBarVertical => Self::StackedBarVertical(from_value(value)?),
            ComponentType::StackedArea => Self::StackedArea(from_value(value)?),
            ComponentType::RelationshipGraph => Self::RelationshipGraph(from_value(value)?),
            ComponentType::DataNarrative => Self::DataNarrative(from_value(value)?),
        })
    }

    /// Attributes of `component_type` with nothing in them: what a builder without any
    /// `attr` call gives.
    pub fn empty(component_type: ComponentType) -> Self {
        let stacked =
            || StackedAttributes { series: StackedSeries { xaxis: Vec::new(), yaxis: Vec::new() } };
        match component_type {
            ComponentType::Summary => Self::Summary(SummaryAttributes { series: Vec::new() }),
            ComponentType::Pie => Self::Pie(PieAttributes { series: Vec::new() }),
            ComponentType::BarHorizontal => {
                Self::BarHorizontal(BarHorizontalAttributes { series: Vec::new() })
            }
            ComponentType::Table => Self::Table(TableAttributes { columns: Vec::new() }),
            ComponentType::DetailedSummary => Self::DetailedSummary(DetailedSummaryAttributes {
                header_columns: Vec::new(),
                detail_columns: Vec::new(),
            }),
            ComponentType::DetailedSummaryV2 => {
                Self::DetailedSummaryV2(DetailedSummaryV2Attributes { series: Vec::new() })
            }
            ComponentType::StackedBarVertical => Self::StackedBarVertical(stacked()),
            ComponentType::StackedArea => Self::StackedArea(stacked()),
            ComponentType::RelationshipGraph => {
                Self::RelationshipGraph(RelationshipGraphAttributes {
                    series: Vec::new(),
                    categories: Vec::new(),
                })
            }
            ComponentType::DataNarrative => Self::DataNarrative(DataNarrativeAttributes {
                series: DataNarrativeSeries { value_key: String::new() },
            }),
        }
    }

    /// The component type these attributes are for.
    pub fn component_type(&self) -> ComponentType {
        match self {
            Self::Summary(_) => ComponentType::Summary,
            Self::Pie(_) => ComponentType::Pie,
            Self::BarHorizontal(_) => ComponentType::BarHorizontal,
            Self::Table(_) => ComponentType::Table,
            Self::DetailedSummary(_) => ComponentType::DetailedSummary,
            Self::DetailedSummaryV2(_) => ComponentType::DetailedSummaryV2,
            Self::StackedBarVertical(_) => ComponentType::StackedBarVertical,
            Self::StackedArea(_) => ComponentType::StackedArea,
            Self::RelationshipGraph(_) => ComponentType::RelationshipGraph,
            Self::DataNarrative(_) => ComponentType::DataNarrative,
        }
    }
}
