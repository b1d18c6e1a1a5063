"""corpusforge's thin trainer: Arrow shards → packed batches → transformers ``Trainer`` (peft LoRA or full).

```python
from corpusforge_trainer import load_config, train, merge

result = train(load_config("trainer/configs/cp-lora.yaml"))
merge(result.output_dir, "merged/")
```
"""

from corpusforge_trainer.config import ConfigError, TrainConfig, load_config
from corpusforge_trainer.model import merge
from corpusforge_trainer.run import TrainResult, train

__all__ = ["ConfigError", "TrainConfig", "TrainResult", "load_config", "merge", "train"]
