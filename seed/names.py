"""Chinese place names for synthetic units: towns 镇 / 街道, villages 村 / 社区, grids 第N网格."""

from __future__ import annotations

import numpy as np

_TOWN_FIRST = "东西南北金玉青白石沙花柳杨梅松兰凤龙锦长永安新华陆周张千淀巴亭朱枫浏双泗"
_TOWN_SECOND = "港浦泾塘桥湾溪河湖墩庄山门林泽滨洲渡口堰里岗阳"
_VILLAGE_FIRST = "大小前后上下东西南北新高红光联合民福康宁和丰兴旺朝万胜友建永富强仁义"
_VILLAGE_SECOND = "家宅庄桥浜湾塘墩港泾圩埭巷园坊里头岸角楼苑田"


def _pool(first: str, second: str) -> list[str]:
    return [a + b for a in first for b in second if a != b]


TOWN_POOL = _pool(_TOWN_FIRST, _TOWN_SECOND)
VILLAGE_POOL = _pool(_VILLAGE_FIRST, _VILLAGE_SECOND)


def draw_names(rng: np.random.Generator, pool: list[str], n: int) -> list[str]:
    """``n`` distinct names from ``pool`` (in the generator's order)."""
    if n > len(pool):
        raise ValueError(f"only {len(pool)} names for {n} units")
    return [pool[i] for i in rng.permutation(len(pool))[:n]]


def grid_name(n: int) -> str:
    """The N-th grid of a village: 第N网格."""
    return f"第{n}网格"
