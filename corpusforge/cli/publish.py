"""`corpusforge publish`: upload a built corpus to the Hugging Face Hub."""

from __future__ import annotations

from corpusforge.cli.common import EXIT_OK, make_console


def add_commands(sub) -> None:
    p = sub.add_parser("publish", help="upload a built corpus to the Hugging Face Hub (Parquet + dataset card)")
    p.add_argument("output_dir")
    p.add_argument("--repo-id", required=True, help="namespace/name of the dataset repo")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--revision", help="branch to commit to (created if missing)")
    p.add_argument("--license", default="unknown", help="license id for the card (default: unknown)")
    p.add_argument("--commit-message", help="the commit's message (default: 'Upload dataset built with corpusforge')")
    p.add_argument("--create-pr", action="store_true", help="open a pull request with the commit instead of pushing")
    p.add_argument(
        "--token",
        help="Hugging Face token (default: HF_TOKEN or `hf auth login`; a token typed here stays in history)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="write the folder that would be uploaded and load it back; no upload"
    )
    p.add_argument("--dry-run-dir", metavar="DIR", help="where --dry-run writes (implies it; default: a new temp dir)")
    p.set_defaults(func=cmd_publish)


def cmd_publish(args) -> int:
    from corpusforge.publish import publish

    dry_run = args.dry_run_dir
    if args.dry_run and dry_run is None:
        import tempfile

        dry_run = tempfile.mkdtemp(prefix="corpusforge-dry-run-")
    where = publish(
        args.output_dir,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        dry_run=dry_run,
        license=args.license,
        token=args.token,
        commit_message=args.commit_message,
        create_pr=args.create_pr,
    )
    if dry_run is not None:
        make_console().print(f"dry run: wrote and loaded back {where} (nothing uploaded)", soft_wrap=True)
    else:
        make_console().print(f"published {args.output_dir} to {args.repo_id}: {where}", soft_wrap=True)
    return EXIT_OK
