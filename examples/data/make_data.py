"""Regenerate garden.txt (a plain-prose corpus) and garden_qa.jsonl (alpaca rows) from one fact table.

Both files are synthetic and written by this script (no third-party text), so the tiny model
pretrained on the corpus can then be LoRA-tuned on questions about the same facts.
Run: python examples/data/make_data.py   (deterministic: seeded)
"""
from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name, family, sow month, weeks to harvest, water, sun, height cm, companion, pest, colour, use
PLANTS = [
    ("tomato", "nightshade", "March", 11, "regular deep", "full sun", 150, "basil", "aphids", "red", "sauces and salads"),
    ("carrot", "carrot", "April", 10, "steady light", "full sun", 30, "onion", "carrot fly", "orange", "soups and roasting"),
    ("lettuce", "daisy", "April", 7, "frequent light", "partial shade", 25, "radish", "slugs", "green", "fresh salads"),
    ("potato", "nightshade", "April", 15, "regular deep", "full sun", 60, "bean", "blight", "brown", "mash and chips"),
    ("onion", "allium", "March", 20, "little", "full sun", 40, "carrot", "onion fly", "golden", "nearly every dish"),
    ("bean", "legume", "May", 9, "regular", "full sun", 180, "sweetcorn", "blackfly", "green", "stews and side dishes"),
    ("pea", "legume", "March", 12, "regular", "full sun", 120, "mint", "pea moth", "green", "soups and risotto"),
    ("cucumber", "gourd", "May", 8, "frequent deep", "full sun", 200, "dill", "powdery mildew", "green", "pickles and salads"),
    ("courgette", "gourd", "May", 8, "frequent deep", "full sun", 70, "nasturtium", "powdery mildew", "green", "grilling and bread"),
    ("pumpkin", "gourd", "May", 16, "frequent deep", "full sun", 50, "sweetcorn", "slugs", "orange", "soup and pies"),
    ("beetroot", "amaranth", "April", 10, "steady", "full sun", 35, "lettuce", "leaf miner", "purple", "salads and pickles"),
    ("spinach", "amaranth", "March", 6, "frequent light", "partial shade", 25, "strawberry", "downy mildew", "green", "salads and curries"),
    ("kale", "cabbage", "April", 9, "regular", "partial shade", 60, "beetroot", "caterpillars", "dark green", "soups and crisps"),
    ("cabbage", "cabbage", "March", 14, "regular", "full sun", 40, "celery", "caterpillars", "green", "slaw and stews"),
    ("broccoli", "cabbage", "April", 12, "regular", "full sun", 70, "onion", "pigeons", "green", "stir fries"),
    ("radish", "cabbage", "April", 4, "frequent light", "partial shade", 15, "lettuce", "flea beetle", "pink", "crunchy salads"),
    ("garlic", "allium", "October", 32, "little", "full sun", 50, "strawberry", "rust", "white", "nearly every dish"),
    ("leek", "allium", "February", 20, "steady", "full sun", 60, "carrot", "leek moth", "pale green", "soups and pies"),
    ("sweetcorn", "grass", "May", 14, "regular deep", "full sun", 200, "bean", "mice", "yellow", "barbecues and salads"),
    ("strawberry", "rose", "April", 12, "regular", "full sun", 20, "spinach", "birds", "red", "desserts and jam"),
    ("basil", "mint", "May", 6, "regular light", "full sun", 40, "tomato", "whitefly", "green", "pesto and pasta"),
    ("mint", "mint", "April", 8, "frequent", "partial shade", 50, "pea", "rust", "green", "tea and sauces"),
    ("parsley", "carrot", "March", 10, "steady", "partial shade", 30, "tomato", "carrot fly", "green", "garnish and sauces"),
    ("chilli", "nightshade", "February", 16, "regular light", "full sun", 60, "basil", "aphids", "red", "curries and salsa"),
    ("pepper", "nightshade", "March", 14, "regular", "full sun", 70, "basil", "aphids", "red", "roasting and salads"),
    ("celery", "carrot", "March", 18, "frequent deep", "partial shade", 45, "cabbage", "slugs", "pale green", "soups and stock"),
    ("squash", "gourd", "May", 15, "frequent deep", "full sun", 60, "sweetcorn", "slugs", "orange", "roasting and soup"),
    ("turnip", "cabbage", "July", 8, "steady", "full sun", 30, "pea", "flea beetle", "white", "stews and mash"),
    ("chard", "amaranth", "April", 8, "regular", "partial shade", 50, "bean", "leaf miner", "rainbow", "sauteing and pies"),
    ("rhubarb", "dock", "March", 52, "regular deep", "partial shade", 90, "garlic", "crown rot", "pink", "crumbles and jam"),
]

OPENERS = ["In the kitchen garden,", "Every year,", "Most gardeners agree that", "On a small plot,", "In spring,",
           "Experienced growers know that", "In our village,", "At the allotment,"]
WEATHER = ["A cold night in late spring can undo a month of work.", "Rain in early summer saves a great deal of watering.",
           "A dry July means the watering can is never far away.", "Autumn gales flatten tall crops that are not staked.",
           "Mild winters let slugs survive in large numbers.", "A warm, still evening is the best time to water."]


def sentences(p: tuple, rng: random.Random) -> list[str]:
    name, fam, month, weeks, water, sun, height, comp, pest, colour, use = p
    s = [
        f"{rng.choice(OPENERS)} the {name} is sown in {month} and is ready to harvest about {weeks} weeks later.",
        f"The {name} belongs to the {fam} family and likes {sun}.",
        f"It needs {water} watering, and a healthy {name} plant grows to about {height} centimetres.",
        f"Gardeners often plant {comp} next to the {name}, because the two grow well together.",
        f"The main trouble for the {name} is {pest}, so check the leaves every few days.",
        f"A ripe {name} is {colour}, and in the kitchen it is used for {use}.",
    ]
    rest = s[1:]
    rng.shuffle(rest)  # the opener names the plant first; the rest in varied order
    return [s[0]] + rest


def corpus(rng: random.Random, paragraphs: int) -> str:
    out = []
    for _ in range(paragraphs):
        chosen = rng.sample(PLANTS, 2)
        body = sentences(chosen[0], rng)[:4] + [rng.choice(WEATHER)] + sentences(chosen[1], rng)[:3]
        out.append(" ".join(body))
    return "\n\n".join(out) + "\n"


def qa_rows(rng: random.Random) -> list[dict]:
    rows = []
    for name, fam, month, weeks, water, sun, height, comp, pest, colour, use in PLANTS:
        rows += [
            {"instruction": f"When should I sow {name}?", "input": "",
             "output": f"Sow {name} in {month}; it is ready to harvest about {weeks} weeks later."},
            {"instruction": "Which family does this plant belong to?", "input": name,
             "output": f"The {name} belongs to the {fam} family."},
            {"instruction": f"How much sun and water does {name} need?", "input": "",
             "output": f"The {name} likes {sun} and needs {water} watering."},
            {"instruction": f"What should I plant next to my {name}?", "input": "",
             "output": f"Plant {comp} next to the {name}; the two grow well together."},
            {"instruction": f"What pest should I watch for on {name}?", "input": "",
             "output": f"Watch for {pest}, and check the leaves every few days."},
            {"instruction": "Describe this vegetable in one sentence.", "input": name,
             "output": f"A ripe {name} is {colour}, grows to about {height} centimetres and is used for {use}."},
            {"instruction": f"How tall does {name} grow?", "input": "",
             "output": f"A healthy {name} plant grows to about {height} centimetres."},
        ]
    rng.shuffle(rows)
    return rows


def main() -> None:
    rng = random.Random(0)
    (HERE / "garden.txt").write_text(corpus(rng, 420), encoding="utf-8")
    with open(HERE / "garden_qa.jsonl", "w", encoding="utf-8") as f:
        for row in qa_rows(rng):
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
