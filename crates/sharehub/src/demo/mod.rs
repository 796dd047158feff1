//! `sharehub demo` (being written).

use clap::Args;

#[derive(Args)]
pub struct DemoArgs {
    /// Stop after the import instead of serving until Ctrl-C.
    #[arg(long)]
    pub exit: bool,
}

pub async fn run(_args: DemoArgs, _config: sharehub_server::Config) -> anyhow::Result<()> {
    anyhow::bail!("the demo is being written")
}
