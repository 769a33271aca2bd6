//! A scenario's `plan` section: what it sizes must exist and its ranges, costs,
//! schedulers and replications must make sense. Each error names its field, located in
//! the file (`s.ron:31:17: plan.sizes[1].name: no backend named "dbx" (backends are: db)`).

use super::Builder;
use crate::Error;
use crate::format::{Plan, Scenario, Size};

/// Most groups a plan sizes together (the search grows with each).
pub const MAX_SIZES: usize = 4;

/// Most replications a trial may ask for.
pub const MAX_REPLICATIONS: u32 = 100;

impl Builder<'_> {
    /// Checks the plan section (its SLO checks are checked with `expect`'s rules).
    pub(super) fn plan(&self, s: &Scenario, p: &Plan) -> Result<(), Error> {
        for (i, e) in p.slo.iter().enumerate() {
            crate::expect::validate(e).map_err(|m| self.err(&format!("plan.slo[{i}]"), m))?;
        }
        let sizes = p.sizes().map_err(|m| self.err("plan.sizes", m))?;
        if sizes.len() > MAX_SIZES {
            return Err(self.err("plan.sizes", format!("at most {MAX_SIZES} groups may be sized together")));
        }
        let single = p.servers.is_some();
        for (i, size) in sizes.iter().enumerate() {
            let at = |field: &str| {
                if single {
                    format!("plan.{}", if field == "name" { "servers" } else { field })
                } else {
                    format!("plan.sizes[{i}].{field}")
                }
            };
            self.size_exists(s, size).map_err(|m| self.err(&at("name"), m))?;
            let (min, max, cost) = size.range();
            if min == 0 {
                return Err(self.err(&at("min"), "must be at least 1"));
            }
            let limit = match size {
                Size::Servers { .. } => super::bounds::MAX_SERVERS as u32,
                Size::BackendCores { .. } => super::bounds::MAX_CORES as u32,
            };
            if max > limit {
                return Err(self.err(&at("max"), format!("at most {limit}")));
            }
            if min > max {
                return Err(self.err(&at("max"), format!("the range {min}..={max} is empty (max < min)")));
            }
            if !(cost.is_finite() && cost >= 0.0) {
                return Err(self.err(&at("cost"), format!("{cost} is not a cost (a number >= 0)")));
            }
            if sizes[..i].iter().any(|o| o == size || same_group(o, size)) {
                return Err(self.err(&format!("plan.sizes[{i}]"), format!("{} is sized twice", size.name())));
            }
        }
        if p.schedulers.is_empty() {
            return Err(self.err("plan.schedulers", "the plan compares no scheduler"));
        }
        if let Some(k) = (1..p.schedulers.len()).find(|&k| p.schedulers[..k].contains(&p.schedulers[k])) {
            return Err(self.err(&format!("plan.schedulers[{k}]"), "this scheduler is listed twice"));
        }
        if !(1..=MAX_REPLICATIONS).contains(&p.replications) {
            return Err(self.err("plan.replications", format!("must be 1..={MAX_REPLICATIONS}")));
        }
        if !(0.0..=1.0).contains(&p.max_loss) {
            return Err(self.err("plan.max_loss", "must be a fraction, 0..=1"));
        }
        Ok(())
    }

    fn size_exists(&self, s: &Scenario, size: &Size) -> Result<(), String> {
        let (kind, names): (&str, Vec<&str>) = match size {
            Size::Servers { .. } => ("server entry", s.servers.iter().map(|x| x.name.as_str()).collect()),
            Size::BackendCores { .. } => ("backend", s.backends.iter().map(|x| x.name.as_str()).collect()),
        };
        if names.contains(&size.name()) {
            return Ok(());
        }
        let list = if names.is_empty() {
            "there are none".to_owned()
        } else {
            format!("they are: {}", names.join(", "))
        };
        Err(format!("no {kind} named {:?} ({list})", size.name()))
    }
}

fn same_group(a: &Size, b: &Size) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b) && a.name() == b.name()
}
