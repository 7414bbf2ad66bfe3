//! `pushgate db install|uninstall`: prepares a database for `--source`, or cleans it up.
//!
//! Both are thin over [`pushgate_sources::install`] and [`pushgate_sources::uninstall`]: they
//! print a summary of what they did, or with `--dry-run` only the SQL (for review, or for a
//! migration), and fail with the database's own words.

use pushgate_sources::{SourceConfig, SourceError, SourceNames, TableSpec};

/// `pushgate db …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum DbCommand {
    /// Create the outbox and watch tables and the triggers of each --table, idempotently: run
    /// it again after ALTER TABLE of a watched table. Prints a summary, or with --dry-run the
    /// SQL without running it.
    Install(InstallArgs),
    /// Remove the triggers of each --table, or with no --table every trigger and the outbox
    /// and watch tables. Idempotent. Prints a summary, or with --dry-run the SQL without
    /// running it.
    Uninstall(UninstallArgs),
}

/// `pushgate db install` options.
#[derive(Debug, Clone, clap::Args)]
pub struct InstallArgs {
    /// The database: postgres://…, mysql://… (or mariadb://…), sqlite:PATH.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// A table to watch; repeat for more.
    #[arg(long = "table", value_name = "TABLE", required = true)]
    pub tables: Vec<String>,
    /// Send the changes of TABLE to TOPIC instead of db.TABLE; repeatable.
    #[arg(long = "topic", value_name = "TABLE=TOPIC")]
    pub topics: Vec<String>,
    /// Print the SQL, run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `pushgate db uninstall` options.
#[derive(Debug, Clone, clap::Args)]
pub struct UninstallArgs {
    /// The database: postgres://…, mysql://… (or mariadb://…), sqlite:PATH.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// A table to stop watching; repeat for more. Without it: everything.
    #[arg(long = "table", value_name = "TABLE")]
    pub tables: Vec<String>,
    /// Print the SQL, run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Why a `pushgate db` command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The arguments do not make sense (a bad table name, a topic for a table not given).
    #[error("{0}")]
    Usage(String),
    /// The database refused, or could not be reached.
    #[error("cannot {action} {url}")]
    Database {
        /// What was being done: `install into`, `uninstall from`, `plan the install into`, ….
        action: &'static str,
        /// The database, password hidden.
        url: String,
        /// What went wrong.
        #[source]
        source: SourceError,
    },
}

impl DbCommand {
    /// Runs the command; returns what to print on stdout.
    ///
    /// # Errors
    /// [`DbError::Usage`] for arguments that do not fit together, [`DbError::Database`] when
    /// the database cannot be reached or refuses.
    pub async fn run(&self) -> Result<String, DbError> {
        match self {
            Self::Install(args) => args.run().await,
            Self::Uninstall(args) => args.run().await,
        }
    }
}

impl InstallArgs {
    async fn run(&self) -> Result<String, DbError> {
        let specs = self.specs()?;
        let url = redacted(&self.url);
        let action = if self.dry_run { "plan the install into" } else { "install into" };
        let plan = pushgate_sources::install(&self.url, &SourceNames::default(), &specs, self.dry_run)
            .await
            .map_err(|source| DbError::Database { action, url: url.clone(), source })?;
        if self.dry_run {
            return Ok(script(&format!("pushgate db install --dry-run for {url}: not run"), &plan));
        }
        let names = SourceNames::default();
        let mut out = format!(
            "Installed into {url} ({} statements): outbox {}, watch table {}, triggers of\n",
            plan.len(),
            names.outbox(),
            names.watch()
        );
        for spec in &specs {
            out.push_str(&format!("  {} -> topic {}\n", spec.table(), spec.topic_name()));
        }
        out.push_str(&format!("Tail it with: pushgate serve --source '{url}'\n"));
        Ok(out)
    }

    /// The tables with their topics; every `--topic` must name a `--table`.
    fn specs(&self) -> Result<Vec<TableSpec>, DbError> {
        let mut specs = self
            .tables
            .iter()
            .map(|table| TableSpec::new(table).map_err(|err| usage("--table", table, &err)))
            .collect::<Result<Vec<_>, _>>()?;
        for topic in &self.topics {
            let Some((table, name)) = topic.split_once('=') else {
                return Err(DbError::Usage(format!("--topic {topic:?}: expected TABLE=TOPIC")));
            };
            let Some(spec) = specs.iter_mut().find(|spec| spec.table() == table) else {
                return Err(DbError::Usage(format!(
                    "--topic {topic:?} names table {table:?}, which is not given with --table"
                )));
            };
            *spec = spec.clone().topic(name).map_err(|err| usage("--topic", topic, &err))?;
        }
        Ok(specs)
    }
}

impl UninstallArgs {
    async fn run(&self) -> Result<String, DbError> {
        for table in &self.tables {
            TableSpec::new(table).map_err(|err| usage("--table", table, &err))?;
        }
        let url = redacted(&self.url);
        let action = if self.dry_run { "plan the uninstall from" } else { "uninstall from" };
        let tables = (!self.tables.is_empty()).then_some(self.tables.as_slice());
        let plan = pushgate_sources::uninstall(&self.url, &SourceNames::default(), tables, self.dry_run)
            .await
            .map_err(|source| DbError::Database { action, url: url.clone(), source })?;
        if self.dry_run {
            return Ok(script(&format!("pushgate db uninstall --dry-run for {url}: not run"), &plan));
        }
        Ok(match tables {
            Some(tables) => format!(
                "Removed from {url} ({} statements): the triggers of {}\n",
                plan.len(),
                tables.join(", ")
            ),
            None => {
                let names = SourceNames::default();
                format!(
                    "Removed from {url} ({} statements): every trigger, the outbox {} and the watch table {}\n",
                    plan.len(),
                    names.outbox(),
                    names.watch()
                )
            }
        })
    }
}

/// The statements as a script a person or a migration tool can run: each ends with `;`.
fn script(title: &str, plan: &[String]) -> String {
    let mut out = format!("-- {title}\n");
    for statement in plan {
        out.push('\n');
        out.push_str(statement.trim_end());
        if !statement.trim_end().ends_with(';') {
            out.push(';');
        }
        out.push('\n');
    }
    out
}

fn redacted(url: &str) -> String {
    SourceConfig::new(url).url_redacted()
}

fn usage(flag: &str, value: &str, err: &SourceError) -> DbError {
    DbError::Usage(format!("{flag} {value:?}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install(tables: &[&str], topics: &[&str]) -> InstallArgs {
        InstallArgs {
            url: "sqlite:x.db".into(),
            tables: tables.iter().map(|&t| t.into()).collect(),
            topics: topics.iter().map(|&t| t.into()).collect(),
            dry_run: true,
        }
    }

    #[test]
    fn topics_name_given_tables() {
        let specs = install(&["users", "orders"], &["orders=shop.orders"]).specs().expect("valid");
        let topics: Vec<String> = specs.iter().map(TableSpec::topic_name).collect();
        assert_eq!(topics, ["db.users", "shop.orders"]);
        for (tables, topics, needle) in [
            (&["users"][..], &["orders=x"][..], "not given with --table"),
            (&["users"], &["users"], "expected TABLE=TOPIC"),
            (&["users"], &["users=a b"], "--topic"),
            (&["users; DROP TABLE x"], &[], "--table"),
        ] {
            let err = install(tables, topics).specs().expect_err("invalid");
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn a_script_ends_every_statement() {
        let plan =
            ["CREATE TABLE t (a int)".to_owned(), "CREATE TRIGGER x BEGIN SELECT 1; END;\n".to_owned()];
        assert_eq!(
            script("title", &plan),
            "-- title\n\nCREATE TABLE t (a int);\n\nCREATE TRIGGER x BEGIN SELECT 1; END;\n"
        );
    }
}
