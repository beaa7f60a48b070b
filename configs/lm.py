"""A byte-level Transformer LM on the Python stdlib's source, on a laptop CPU.

    vision-jax train --config=configs/lm.py --workdir=workdirs/lm
    python -m vision_jax.tasks.lm sample --workdir=workdirs/lm --prompt "def " \\
        --temperature 0.8 --top-k 40

Arguments: size (a key of vision_jax.tasks.lm.SIZES, named by non-embedding
parameters, '10k' to '1.2M'), seq_len, corpus ('stdlib', a TFDS text dataset
such as 'tiny_shakespeare', or a saved corpus directory), steps.

Task 'lm' (vision_jax/tasks/lm.py): a decoder-only Transformer (pre-norm,
GELU MLP of 4 d_model, rotary positions, untied output layer) predicts each
next byte of a window of seq_len + 1 bytes; one example is one window. The
stdlib corpus is built offline from the running interpreter (12 MB; 2% of
the files, chosen by a hash of their paths, are the validation split).
AdamW (b2 = 0.95, weight decay 0.1 on the kernels), batch 8 windows,
peak rate 0.02 x min(1, 32 / d_model) (vision_jax.tasks.lm.learning_rate,
tuned for these sizes), warmup, cosine decay to 10%.

Result (2026-12-03, 2-core x86 CPU otherwise idle, jax on 1 CPU device):
15,000 steps of 8 windows (120,000 windows = 7.7M bytes, 0.64 epochs) in
4m34s wall (265 s of training at 463 windows/s; train step compiled in
3.1 s). Final eval on 1,024 validation windows (65,536 bytes spread over the
split): 1.750 bits/byte (1.213 nats/byte), next-byte accuracy 66.7%; the
eval curve was 2.30, 2.15, 2.04, 1.93, 1.81 bits/byte at steps 2.5k to 12.5k,
still falling. For scale, on the validation split: a unigram model of the
training bytes gives 4.62 bits/byte, gzip -9 2.13, xz -9e 1.91 (both with
the whole split as context; the model sees 64 bytes). The model: 182,848
parameters, 150,080 non-embedding; 6ND = 6.9e12 FLOPs. The sampling
command above (temperature 0.8, top-k 40) writes Python-shaped text:

    def get_tmp = [] in ['!'], 'entral']}:
            py = globals.setup(self.__iter__=FL.ESCHAPING_LIMENT:
                self._transports_filename()
            # The text called dict is as the specified by calls reduce formats it
"""

from vision_jax.config import base_config, parse_arg
from vision_jax.tasks import lm


def get_config(arg=None):
    a = parse_arg(arg, size="150k", seq_len=64, corpus="stdlib", steps=15000)
    c = base_config()
    c.task = "lm"
    c.lm = lm.lm_section(corpus=a.corpus, seq_len=a.seq_len, eval_windows=1024)
    # The summary's 'dataset' is the corpus (the trainer's data section is otherwise unused).
    c.data.name = c.lm.get_ref("corpus")
    c.data.train_split, c.data.eval_split = "train", "validation"
    size = {k.split(".", 1)[1]: v for k, v in lm.model_settings(a.size).items()}
    c.model = dict(name="transformer", **size, position="rotary", mlp="gelu",
                   norm="layernorm", pre_norm=True, use_bias=True, tie_embeddings=False,
                   parametrization="sp", mup_base_width=0, scan_layers=False)
    c.batch_size = 8
    c.total_steps = a.steps
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = round(lm.learning_rate(c.model.d_model), 6)
    c.optimizer.b2 = 0.95
    c.optimizer.weight_decay = 0.1
    c.optimizer.grad_clip_norm = 1.0
    c.schedule.name = "cosine"
    c.schedule.warmup_steps = 300
    c.schedule.end_factor = 0.1
    c.log_every_steps = 100
    c.eval_every_steps = 2500
    c.checkpoint.every_steps = 2500
    return c
