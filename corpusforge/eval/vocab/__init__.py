"""Vocabulary: `fertility` (tokens per character and word, per language), `extend` (grow a BPE tokenizer with
target-language pieces), over one `tokenizer` view of HF, SentencePiece and tekken tokenizers."""
