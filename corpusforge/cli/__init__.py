"""The `corpusforge` command: parse, call one library function, print. One file per group of commands:

build.py     run, status, finalize, validate, schema, inspect, report
publish.py   publish
train.py     train (hands its arguments to corpusforge_trainer)
vocab.py     vocab fertility, vocab extend
evaluate.py  eval scorecard (alias: eval align)
app.py       the top-level parser, logging, errors → exit status; common.py what they all share

corpusforge run recipes/quickstart.yaml [--output DIR] [--set a.b=c ...] [--overwrite] [--dry-run]
corpusforge status out/quickstart
corpusforge validate recipes/quickstart.yaml
corpusforge schema > recipe.schema.json
corpusforge inspect out/quickstart
corpusforge vocab fertility --tokenizer TOK out/quickstart
corpusforge vocab extend --tokenizer TOK out/quickstart --add 8000 --output tok-ext
corpusforge eval scorecard --model BASE --model TUNED --prompts th.jsonl --prompts-en en.jsonl --language th -o DIR
corpusforge eval scorecard --config eval.yaml [--set k=v]      (`eval align` is the same command)
corpusforge train trainer/configs/cp-lora.yaml [--set k=v] | corpusforge train merge RUN_DIR --output DIR
"""

from corpusforge.cli.app import main, make_parser

__all__ = ["main", "make_parser"]
