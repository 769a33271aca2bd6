//! sh: placeholder, being written.

use crate::dest::DestId;
use crate::service::DestList;
use crate::{Flow, SvcFlags};

#[derive(Clone, Debug)]
pub(crate) struct ShState;

impl ShState {
    pub(crate) fn new(_list: DestList<'_>) -> Self {
        ShState
    }
    pub(crate) fn rebuild(&mut self, _list: DestList<'_>) {}
    pub(crate) fn schedule(&self, _list: DestList<'_>, _flags: SvcFlags, _flow: &Flow) -> Option<DestId> {
        None
    }
}
