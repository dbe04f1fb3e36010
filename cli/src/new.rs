//! `stark-pipe new NAME [--lang rust|c] [--path DIR]`: writes a ready project, like `cargo new`.
//!
//! The templates live in `guest/templates/` and the runtimes in `guest/rust` and `guest/c`; all
//! are embedded in the binary at build time, and a new project gets its own copy of the runtime
//! (`stark-pipe-guest/` for Rust, a path dependency; `stark-pipe/` for C, included by the
//! Makefile). So a project needs nothing from this repository, nor a registry entry for the
//! runtime (which is not on crates.io), and it keeps building the same when stark-pipe moves
//! on; the Rust project's only download is its crates.io dependencies (sha2) on the first build.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

/// Arguments of `stark-pipe new`.
#[derive(Args, Debug)]
pub struct NewArgs {
    /// The project's name: the package and program name, and the folder unless --path is given.
    /// Letters, digits, `-` and `_`, starting with a letter.
    pub name: String,
    /// The language of the project.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
    /// The folder to create (default: ./NAME). It must not exist or be empty.
    #[arg(long)]
    pub path: Option<PathBuf>,
}

/// The languages `stark-pipe new` has templates for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// A `no_std` + `alloc` Rust program on the stark-pipe-guest runtime, using the sha2 crate.
    Rust,
    /// A C program on picolibc (printf, malloc, fread), built with make.
    C,
}

/// One file of a template: where it goes in the project, and its text (`{{name}}` is replaced
/// by the project's name).
struct File {
    path: &'static str,
    text: &'static str,
}

macro_rules! template_file {
    ($path:literal, $source:literal) => {
        File {
            path: $path,
            text: include_str!(concat!("../../guest/", $source)),
        }
    };
}

const RUST: &[File] = &[
    template_file!("Cargo.toml", "templates/rust/Cargo.toml"),
    template_file!(".cargo/config.toml", "templates/rust/config.toml"),
    template_file!("src/main.rs", "templates/rust/main.rs"),
    template_file!("README.md", "templates/rust/README.md"),
    template_file!("input.txt", "templates/rust/input.txt"),
    template_file!(".gitignore", "templates/rust/gitignore"),
    template_file!("stark-pipe-guest/Cargo.toml", "rust/Cargo.toml"),
    template_file!("stark-pipe-guest/build.rs", "rust/build.rs"),
    template_file!(
        "stark-pipe-guest/stark-pipe-guest.ld",
        "rust/stark-pipe-guest.ld"
    ),
    template_file!("stark-pipe-guest/src/lib.rs", "rust/src/lib.rs"),
    template_file!("stark-pipe-guest/src/heap.rs", "rust/src/heap.rs"),
    template_file!("stark-pipe-guest/src/io.rs", "rust/src/io.rs"),
    template_file!("stark-pipe-guest/src/rt.rs", "rust/src/rt.rs"),
    template_file!("stark-pipe-guest/src/sys.rs", "rust/src/sys.rs"),
];

const C: &[File] = &[
    template_file!("Makefile", "templates/c/Makefile"),
    template_file!("main.c", "templates/c/main.c"),
    template_file!("README.md", "templates/c/README.md"),
    template_file!("input.txt", "templates/c/input.txt"),
    template_file!(".gitignore", "templates/c/gitignore"),
    template_file!("stark-pipe/guest.mk", "c/guest.mk"),
    template_file!("stark-pipe/crt0.S", "c/crt0.S"),
    template_file!("stark-pipe/syscalls.c", "c/syscalls.c"),
    template_file!("stark-pipe/stark-pipe.ld", "c/stark-pipe.ld"),
];

/// Names a project cannot take: they would clash with the crates every Rust guest links
/// (or are Rust keywords, which cargo refuses as package names).
const RESERVED: &[&str] = &[
    "core",
    "alloc",
    "std",
    "test",
    "proc_macro",
    "compiler_builtins",
    "stark-pipe-guest",
    "stark_pipe_guest",
    "sha2",
    "as",
    "break",
    "const",
    "continue",
    "crate",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "async",
    "await",
    "dyn",
];

fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !starts_with_letter || !rest_ok || name.len() > 64 {
        bail!(
            "{name:?} is not a valid project name: use letters, digits, '-' and '_', starting \
             with a letter (at most 64 characters)"
        );
    }
    if RESERVED.contains(&name) {
        bail!(
            "{name:?} cannot be a project name: it is reserved (a Rust keyword or a crate every guest links)"
        );
    }
    Ok(())
}

/// Refuses a folder that exists and is not empty (or is not a folder).
fn check_target(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} already exists and is not empty: choose another name or --path, or remove it",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) if dir.exists() => bail!("{} exists and is not a folder", dir.display()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
}

/// Writes the project's files into `dir` (which must not exist or be empty).
fn write_project(dir: &Path, name: &str, lang: Lang) -> anyhow::Result<()> {
    let files = match lang {
        Lang::Rust => RUST,
        Lang::C => C,
    };
    for file in files {
        let path = dir.join(file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, file.text.replace("{{name}}", name))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The commands that build, prove and verify the new project (the ones its README gives).
fn next_steps(dir: &Path, name: &str, lang: Lang) -> String {
    let (build, elf) = match lang {
        Lang::Rust => (
            "RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo build --release".to_string(),
            format!("target/riscv32im-unknown-none-elf/release/{name}"),
        ),
        Lang::C => ("make".to_string(), format!("{name}.elf")),
    };
    format!(
        "  cd {}\n  {build}\n  stark-pipe execute {elf} --input input.txt\n  \
         stark-pipe run {elf} --input input.txt -o {name}.proof\n  \
         stark-pipe verify {name}.proof {elf}\n",
        dir.display()
    )
}

/// `stark-pipe new`.
pub fn run(args: &NewArgs) -> anyhow::Result<()> {
    check_name(&args.name)?;
    let dir = args
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    check_target(&dir)?;
    write_project(&dir, &args.name, args.lang)?;
    let lang = match args.lang {
        Lang::Rust => "Rust",
        Lang::C => "C",
    };
    println!(
        "Created the {lang} program {:?} in {}. Build, run, prove and verify it with:\n{}\
         (README.md in the project explains these; the toolchain is in docs/guests.md)",
        args.name,
        dir.display(),
        next_steps(&dir, &args.name, args.lang)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("stark-pipe-new-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn names_are_checked() {
        for good in ["hello", "my-prog", "a_1", "X"] {
            check_name(good).unwrap();
        }
        for bad in [
            "",
            "1abc",
            "-x",
            "a b",
            "a/b",
            "héllo",
            "core",
            "fn",
            "stark-pipe-guest",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn writes_every_file_with_the_name_and_refuses_a_non_empty_folder() {
        for lang in [Lang::Rust, Lang::C] {
            let dir = scratch(&format!("{lang:?}"));
            let args = NewArgs {
                name: "demo-app".into(),
                lang,
                path: Some(dir.clone()),
            };
            run(&args).unwrap();
            let files = if lang == Lang::Rust { RUST } else { C };
            for f in files {
                let text = std::fs::read_to_string(dir.join(f.path)).unwrap();
                assert!(!text.contains("{{name}}"), "{}: placeholder left", f.path);
            }
            let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
            assert!(readme.contains("demo-app"), "{readme}");
            // The README's commands are the ones `new` prints.
            for line in next_steps(&dir, "demo-app", lang).lines().skip(1) {
                assert!(readme.contains(line.trim()), "README lacks {line:?}");
            }
            let err = run(&args).unwrap_err().to_string();
            assert!(err.contains("already exists and is not empty"), "{err}");
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn an_empty_folder_is_fine_a_file_is_not() {
        let dir = scratch("empty");
        std::fs::create_dir_all(&dir).unwrap();
        check_target(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(
            check_target(&file)
                .unwrap_err()
                .to_string()
                .contains("not a folder")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
