"""`shapes_goal`: "move to the red circle", a pixel environment in pure JAX.

A grid of `grid` x `grid` cells of `cell` pixels (default 5 x 5 cells of 6 px:
a 30x30 RGB observation in [0, 1]) holds the agent (a white square), the goal
(a red circle) and `num_distractors` other objects drawn with the outlines and
colours of the `shapes` dataset (vision_jax/data/shapes.py). Every distractor
shares one attribute with the goal: it is a red non-circle or a circle of
another colour, so neither colour nor shape alone finds the goal, and the
positions change every episode, so a policy must read the pixels (a CNN).

Actions: up, down, left, right (moves into a wall do nothing). Stepping onto an
object ends the episode with reward 1 for the goal and 0 for a distractor;
`max_steps_in_episode` (default 20) truncates it. The episode return is
therefore 1 exactly when the agent succeeded: the mean return is the success
rate. reset and step are pure functions of (key, state, action, params), the
gymnax `Environment` interface, so they jit, vmap and auto-reset like gymnax's.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

# Shapes a distractor may take when it is red (a circle is the goal's own).
DISTRACTOR_SHAPES = ("square", "triangle", "diamond", "cross", "star")
BACKGROUND = 0.12  # dark grey, darker than every shape colour
MOVES = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)], np.int32)  # (row, col): up, down, left, right


@struct.dataclass
class EnvState(environment.EnvState):
    agent: jax.Array    # int32 [2] (row, col)
    objects: jax.Array  # int32 [K, 2]; object 0 is the goal
    sprite: jax.Array   # int32 [K] index into the sprite table
    color: jax.Array    # float32 [K, 3]
    time: int


@struct.dataclass
class EnvParams(environment.EnvParams):
    max_steps_in_episode: int = 20


@functools.lru_cache(maxsize=None)
def sprites(cell: int) -> np.ndarray:
    """Anti-aliased coverage [S, cell, cell] of the circle, the distractor shapes
    and the agent's square, from the `shapes` outlines and rasteriser."""
    from vision_jax.data import shapes  # numpy + PIL; imported once per cell size

    def draw(name, radius):
        index = shapes.SHAPES.index(name)
        window, (rows, cols) = shapes._coverage(
            shapes._outline(index, np.array([cell / 2, cell / 2]), radius, 0.0), cell)
        out = np.zeros((cell, cell), np.float32)
        out[rows, cols] = window
        return out

    table = [draw(n, 0.5 * cell) for n in ("circle",) + DISTRACTOR_SHAPES]
    table.append(draw("square", 0.3 * cell))  # the agent: a small white square
    return np.stack(table)


class ShapesGoal(environment.Environment[EnvState, EnvParams]):
    def __init__(self, grid: int = 5, cell: int = 6, num_distractors: int = 3):
        super().__init__()
        if grid * grid < num_distractors + 2:
            raise ValueError(f"shapes_goal: {grid}x{grid} cells cannot hold the agent, "
                             f"the goal and {num_distractors} distractors")
        self.grid, self.cell, self.num_distractors = grid, cell, num_distractors
        self._sprites = jnp.asarray(sprites(cell))
        from vision_jax.data import shapes
        colors = np.array(list(shapes.COLORS.values()), np.float32) / 255.0
        self._red = jnp.asarray(colors[shapes.COLOR_NAMES.index("red")])
        self._others = jnp.asarray(np.delete(colors, shapes.COLOR_NAMES.index("red"), axis=0))

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    @property
    def name(self) -> str:
        return "ShapesGoal"

    @property
    def num_actions(self) -> int:
        return len(MOVES)

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(len(MOVES))

    def observation_space(self, params=None) -> spaces.Box:
        side = self.grid * self.cell
        return spaces.Box(0.0, 1.0, (side, side, 3), jnp.float32)

    def reset_env(self, key, params):
        k_cells, k_kind, k_shape, k_color = jax.random.split(key, 4)
        n = self.num_distractors
        cells = jax.random.permutation(k_cells, self.grid * self.grid)[:n + 2]
        pos = jnp.stack([cells // self.grid, cells % self.grid], axis=-1).astype(jnp.int32)
        red = jax.random.bernoulli(k_kind, 0.5, (n,))  # red non-circle, else non-red circle
        shape = jax.random.randint(k_shape, (n,), 1, 1 + len(DISTRACTOR_SHAPES))
        other = self._others[jax.random.randint(k_color, (n,), 0, len(self._others))]
        state = EnvState(
            agent=pos[0], objects=pos[1:],
            sprite=jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.where(red, shape, 0)]),
            color=jnp.concatenate([self._red[None], jnp.where(red[:, None], self._red[None], other)]),
            time=0)
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        agent = jnp.clip(state.agent + jnp.asarray(MOVES)[action], 0, self.grid - 1)
        hit = jnp.all(state.objects == agent[None], axis=-1)
        state = state.replace(agent=agent, time=state.time + 1)
        reward = hit[0].astype(jnp.float32)
        terminated = jnp.any(hit)
        return self.get_obs(state), state, reward, terminated, {}

    def is_terminated(self, state, params):
        return jnp.any(jnp.all(state.objects == state.agent[None], axis=-1))

    def get_obs(self, state, params=None, key=None):
        """The RGB image [grid*cell, grid*cell, 3]: objects, then the agent on top."""
        where = jnp.concatenate([state.objects, state.agent[None]])
        sprite = jnp.concatenate([state.sprite, jnp.array([len(self._sprites) - 1])])
        color = jnp.concatenate([state.color, jnp.ones((1, 3))])
        rows = jax.nn.one_hot(where[:, 0], self.grid)
        cols = jax.nn.one_hot(where[:, 1], self.grid)
        # alpha[k, gy, cy, gx, cx]: object k's coverage at pixel (gy*cell+cy, gx*cell+cx).
        alpha = jnp.einsum("ka,kb,kcd->kacbd", rows, cols, self._sprites[sprite])
        side = self.grid * self.cell
        alpha = alpha.reshape(len(where), side, side, 1)
        image = jnp.full((side, side, 3), BACKGROUND)
        for k in range(len(where)):  # cells never overlap; the agent is drawn last
            image = image * (1 - alpha[k]) + alpha[k] * color[k][None, None]
        return image
