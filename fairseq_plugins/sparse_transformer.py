"""The ``sparse_transformer`` model: fairseq's Transformer with a chosen normalizer per sublayer.

Architectures ``<variant>_transformer_{wmt_en_de,iwslt_de_en,tiny}`` exist for
every variant in :data:`~fairseq_plugins.normalizers.ATTENTION_VARIANTS`;
``--attention`` sets all three sublayers and ``--encoder-attention``,
``--decoder-attention``, ``--cross-attention`` override one each.
"""


import argparse
from dataclasses import dataclass, field
from typing import Optional

from fairseq.dataclass import ChoiceEnum
from fairseq.dataclass.utils import gen_parser_from_dataclass
from fairseq.utils import safe_getattr
from fairseq.distributed import fsdp_wrap
from fairseq.models import ARCH_MODEL_REGISTRY, MODEL_REGISTRY, register_model, register_model_architecture
from fairseq.models.transformer import (
    TransformerConfig,
    TransformerDecoderBase,
    TransformerEncoderBase,
    TransformerModel,
    TransformerModelBase,
)
from fairseq.models.transformer.transformer_legacy import base_architecture, transformer_iwslt_de_en
from fairseq.modules.checkpoint_activations import checkpoint_wrapper
from fairseq.modules.transformer_layer import TransformerDecoderLayerBase, TransformerEncoderLayerBase

from .attention import SparseMultiheadAttention, attention_modules
from .normalizers import ATTENTION_VARIANTS

MODEL_NAME = "sparse_transformer"
ARCH_SIZES = ("wmt_en_de", "iwslt_de_en", "tiny")
AttentionChoice = ChoiceEnum(list(ATTENTION_VARIANTS))


@dataclass
class SparseTransformerConfig(TransformerConfig):
    """fairseq's TransformerConfig plus the attention normalizer of each sublayer."""

    attention: AttentionChoice = field(
        default="softmax",
        metadata={"help": "attention normalizer of all three sublayers (overridden per sublayer below)"},
    )
    cross_attention: Optional[AttentionChoice] = field(
        default=None, metadata={"help": "normalizer of encoder-decoder attention (default: --attention)"}
    )
    attention_topk: int = field(
        default=8, metadata={"help": "k of top-k attention (Zhao et al. 2019 used k=8 on IWSLT14)"}
    )
    alpha_entmax_init: float = field(
        default=1.5, metadata={"help": "initial alpha of learned-alpha entmax, in (1, 2)"}
    )
    alpha_entmax_n_iter: int = field(
        default=50, metadata={"help": "maximum root-finding iterations of learned-alpha entmax"}
    )

    def normalizer_of(self, sublayer: str) -> str:
        """Normalizer of ``sublayer`` in {'encoder', 'decoder', 'cross'}.

        fairseq's TransformerConfig maps every flat ``encoder_*`` / ``decoder_*``
        name onto ``cfg.encoder.*`` / ``cfg.decoder.*``, so ``--encoder-attention``
        arrives as ``cfg.encoder.attention`` (see :data:`SUBLAYER_FLAGS`).
        """
        if sublayer == "cross":
            specific = self.cross_attention
        else:
            specific = getattr(getattr(self, sublayer), "attention", None)
        return str(specific if specific is not None else self.attention)


# Per-sublayer flags that cannot be dataclass fields: fairseq would route them into
# cfg.encoder / cfg.decoder (see normalizer_of); they are added to argparse by hand.
SUBLAYER_FLAGS = {
    "--encoder-attention": "normalizer of encoder self-attention (default: --attention)",
    "--decoder-attention": "normalizer of decoder self-attention (default: --attention)",
}


def _attention(cfg: SparseTransformerConfig, sublayer: str, embed_dim: int, num_heads: int, **kwargs):
    if kwargs.pop("xformers_att_config", None):
        raise ValueError("xformers attention is not supported by sparse_transformer")
    return SparseMultiheadAttention(
        embed_dim,
        num_heads,
        dropout=cfg.attention_dropout,
        normalizer=cfg.normalizer_of(sublayer),
        topk=cfg.attention_topk,
        alpha_init=cfg.alpha_entmax_init,
        alpha_n_iter=cfg.alpha_entmax_n_iter,
        **kwargs,
    )


class SparseEncoderLayer(TransformerEncoderLayerBase):
    def build_self_attention(self, embed_dim, cfg):
        return _attention(
            cfg, "encoder", embed_dim, cfg.encoder.attention_heads, self_attention=True,
            q_noise=self.quant_noise, qn_block_size=self.quant_noise_block_size,
            xformers_att_config=cfg.encoder.xformers_att_config,
        )


class SparseDecoderLayer(TransformerDecoderLayerBase):
    def build_self_attention(self, embed_dim, cfg, add_bias_kv=False, add_zero_attn=False):
        return _attention(
            cfg, "decoder", embed_dim, cfg.decoder.attention_heads,
            add_bias_kv=add_bias_kv, add_zero_attn=add_zero_attn,
            self_attention=not cfg.cross_self_attention,
            q_noise=self.quant_noise, qn_block_size=self.quant_noise_block_size,
            xformers_att_config=cfg.decoder.xformers_att_config,
        )

    def build_encoder_attention(self, embed_dim, cfg):
        return _attention(
            cfg, "cross", embed_dim, cfg.decoder.attention_heads,
            kdim=cfg.encoder.embed_dim, vdim=cfg.encoder.embed_dim,
            encoder_decoder_attention=True,
            q_noise=self.quant_noise, qn_block_size=self.quant_noise_block_size,
            xformers_att_config=cfg.encoder.xformers_att_config,
        )


def _wrap_layer(layer, cfg):
    """Activation checkpointing and FSDP wrapping, as fairseq does for its own layers."""
    if cfg.checkpoint_activations:
        layer = checkpoint_wrapper(layer, offload_to_cpu=cfg.offload_activations)
    min_params_to_wrap = cfg.min_params_to_wrap if not cfg.checkpoint_activations else 0
    return fsdp_wrap(layer, min_num_params=min_params_to_wrap)


class SparseTransformerEncoder(TransformerEncoderBase):
    def build_encoder_layer(self, cfg):
        return _wrap_layer(SparseEncoderLayer(cfg, return_fc=self.return_fc), cfg)


class SparseTransformerDecoder(TransformerDecoderBase):
    def build_decoder_layer(self, cfg, no_encoder_attn=False):
        return _wrap_layer(SparseDecoderLayer(cfg, no_encoder_attn), cfg)


if MODEL_NAME in MODEL_REGISTRY:  # fairseq's own check raises too; say whose name clashes
    raise ValueError(f"fairseq already has a model named {MODEL_NAME!r}; fairseq_plugins cannot register it")


@register_model(MODEL_NAME)
class SparseTransformerModel(TransformerModel):
    """Transformer (Vaswani et al. 2017) whose attention normalizers are pluggable.

    Same parameters as fairseq's ``transformer`` (plus alpha/ReLA-norm
    parameters for those variants), so softmax checkpoints are interchangeable.
    """

    @classmethod
    def add_args(cls, parser):
        gen_parser_from_dataclass(parser, SparseTransformerConfig(), delete_default=True, with_prefix="")
        for flag, help_text in SUBLAYER_FLAGS.items():
            parser.add_argument(flag, choices=list(ATTENTION_VARIANTS), default=argparse.SUPPRESS, help=help_text)

    @classmethod
    def build_model(cls, args, task):
        base_architecture(args)
        # fairseq's legacy build_model converts args with TransformerConfig, which would drop
        # our fields; convert with our config class and continue with the structured builder.
        cfg = SparseTransformerConfig.from_namespace(args)
        # from_namespace routes flat encoder_*/decoder_* keys of an argparse Namespace onto
        # cfg.encoder/cfg.decoder, but not those of a Hydra DictConfig: carry them over here.
        for side in ("encoder", "decoder"):
            value = safe_getattr(args, f"{side}_attention", None)
            if value is not None:
                setattr(getattr(cfg, side), "attention", str(value))
        for sublayer in ("encoder", "decoder", "cross"):
            normalizer = cfg.normalizer_of(sublayer)
            if normalizer not in ATTENTION_VARIANTS:
                raise ValueError(
                    f"--{sublayer}-attention {normalizer!r} is not one of {', '.join(ATTENTION_VARIANTS)}"
                )
        return TransformerModelBase.build_model.__func__(cls, cfg, task)

    @classmethod
    def build_encoder(cls, cfg, src_dict, embed_tokens):
        return SparseTransformerEncoder(cfg, src_dict, embed_tokens)

    @classmethod
    def build_decoder(cls, cfg, tgt_dict, embed_tokens):
        return SparseTransformerDecoder(
            cfg, tgt_dict, embed_tokens, no_encoder_attn=cfg.no_cross_attention
        )

    def attention_modules(self):
        """(sublayer, layer index, module) for every attention module, in model order
        (:func:`fairseq_plugins.attention.attention_modules`)."""
        return attention_modules(self)

    def learned_alphas(self):
        """{'<sublayer>.<layer>': per-head alpha list} of every alpha_entmax module."""
        return {
            f"{sublayer}.{i}": module.alpha.detach().cpu().tolist()
            for sublayer, i, module in self.attention_modules()
            if module.alpha is not None
        }


# --- architectures -----------------------------------------------------------------


def _paper_base(args):
    """Transformer base of the ReLA paper (Zhang et al. 2021, Sec. 4): 6+6 layers, d 512,
    FFN 2048, 8 heads, post-norm, dropout 0.1 and attention dropout 0.1."""
    args.dropout = getattr(args, "dropout", 0.1)
    args.attention_dropout = getattr(args, "attention_dropout", 0.1)
    base_architecture(args)


def _iwslt(args):
    """fairseq's transformer_iwslt_de_en sizes: 6+6 layers, d 512, FFN 1024, 4 heads."""
    transformer_iwslt_de_en(args)


def _tiny(args):
    """2+2 layers, d 64, FFN 256, 4 heads: for tests and the CPU demo."""
    for side in ("encoder", "decoder"):
        setattr(args, f"{side}_embed_dim", getattr(args, f"{side}_embed_dim", 64))
        setattr(args, f"{side}_ffn_embed_dim", getattr(args, f"{side}_ffn_embed_dim", 256))
        setattr(args, f"{side}_layers", getattr(args, f"{side}_layers", 2))
        setattr(args, f"{side}_attention_heads", getattr(args, f"{side}_attention_heads", 4))
    base_architecture(args)


_SIZE_FUNCTIONS = {"wmt_en_de": _paper_base, "iwslt_de_en": _iwslt, "tiny": _tiny}


def architecture_name(variant: str, size: str) -> str:
    return f"{variant}_transformer_{size}"


def _register_architecture(variant: Optional[str], size: str) -> None:
    """Register ``<variant>_transformer_<size>``; with variant None, ``sparse_transformer_<size>``
    whose attention comes from --attention (default softmax): the name for Hydra configs that
    compose the attention separately."""
    name = architecture_name(variant or MODEL_NAME.split("_")[0], size)
    if name in ARCH_MODEL_REGISTRY:
        raise ValueError(f"architecture {name!r} is already registered in fairseq; fairseq_plugins cannot reuse it")
    size_function = _SIZE_FUNCTIONS[size]

    def architecture(args):
        args.attention = getattr(args, "attention", variant or "softmax")
        size_function(args)

    architecture.__name__ = name
    architecture.__doc__ = f"{variant or '--attention'} attention, {size_function.__doc__}"
    register_model_architecture(MODEL_NAME, name)(architecture)


for _variant in (*ATTENTION_VARIANTS, None):
    for _size in ARCH_SIZES:
        _register_architecture(_variant, _size)

ARCHITECTURES = tuple(architecture_name(v, s) for v in (*ATTENTION_VARIANTS, "sparse") for s in ARCH_SIZES)
