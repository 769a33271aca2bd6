//! dh: placeholder, being written.

use crate::Flow;
use crate::dest::DestId;
use crate::service::DestList;

#[derive(Clone, Debug)]
pub(crate) struct DhState;

impl DhState {
    pub(crate) fn new(_list: DestList<'_>) -> Self {
        DhState
    }
    pub(crate) fn rebuild(&mut self, _list: DestList<'_>) {}
    pub(crate) fn schedule(&self, _list: DestList<'_>, _flow: &Flow) -> Option<DestId> {
        None
    }
}
