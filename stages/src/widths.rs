//! How much witness each table commits: what `run --widths` prints, for either prover.

use vm::air::Rv32Air;

/// One table's share of the committed witness.
#[derive(Clone, Debug)]
pub struct TableWidth {
    pub name: String,
    pub instances: usize,
    /// Rows over all instances (padding included).
    pub rows: u64,
    pub main_width: usize,
    /// Base-field columns of the LogUp aux trace (an extension column counts twice).
    pub aux_width: usize,
    pub prep_width: usize,
}

impl TableWidth {
    /// Committed witness cells: rows x (main + aux).
    pub fn cells(&self) -> u64 {
        self.rows * (self.main_width + self.aux_width) as u64
    }
}

/// Every table's widths, with the instances and rows of `instances` (table index, rows).
pub fn table_widths(
    air: &Rv32Air,
    instances: impl IntoIterator<Item = (usize, u64)>,
) -> Vec<TableWidth> {
    let mut widths: Vec<TableWidth> = air
        .tables()
        .iter()
        .map(|t| {
            let compiled = stark::compile(*t).expect("the machine's tables compile");
            TableWidth {
                name: t.name().to_string(),
                instances: 0,
                rows: 0,
                main_width: compiled.main_width,
                aux_width: compiled.aux_width(),
                prep_width: compiled.prep_width,
            }
        })
        .collect();
    for (table, rows) in instances {
        let w = &mut widths[table];
        w.instances += 1;
        w.rows += rows;
    }
    widths
}
