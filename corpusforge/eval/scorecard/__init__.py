"""The transfer scorecard (``corpusforge eval scorecard``): `evaluate` runs it (prompts, generation, classification),
`config` is its YAML/flags model, `results` the types its stages share, `retention` and `likelihood` what a model
kept, `verdicts` the scorecard and its verdicts, `plot` the chart."""
