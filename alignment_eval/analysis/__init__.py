"""What a trained model's attention does: word alignments extracted from it and their AER
(:mod:`.extract`), attention statistics (:mod:`.attention_stats`) and the report comparing
models (:mod:`.report`, :mod:`.figures`).

Torch boundary: :mod:`.model_attention` imports torch, fairseq, ``fairseq_plugins`` and
sentencepiece inside its functions, so importing any module here stays torch-free.
"""
