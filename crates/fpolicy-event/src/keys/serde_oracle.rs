//! The serde parse the sinks used before [`super::EventKeys`] was read by
//! hand: the oracle of the keys' property test and the "before" of the
//! keys benchmark (which includes this file by path).

use std::borrow::Cow;

use super::EventKeys;

#[derive(serde::Deserialize)]
pub struct SerdeKeys<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow)]
    operation_type: Cow<'a, str>,
    #[serde(borrow)]
    file_path: Cow<'a, str>,
    #[serde(borrow)]
    volume_name: Cow<'a, str>,
    #[serde(borrow)]
    svm_name: Cow<'a, str>,
    #[serde(borrow)]
    metadata: SerdeMeta<'a>,
}

#[derive(serde::Deserialize)]
pub struct SerdeMeta<'a> {
    #[serde(borrow, default)]
    protocol: Cow<'a, str>,
    #[serde(borrow, default)]
    routes: Vec<Cow<'a, str>>,
}

impl<'a> SerdeKeys<'a> {
    pub fn into_keys(self) -> EventKeys<'a> {
        EventKeys {
            event_id: self.event_id,
            operation_type: self.operation_type,
            file_path: self.file_path,
            volume_name: self.volume_name,
            svm_name: self.svm_name,
            protocol: self.metadata.protocol,
            first_route: self.metadata.routes.into_iter().next(),
        }
    }
}
