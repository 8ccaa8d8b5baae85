"""The mini world's classes: Fashion-MNIST's 10 labels, the names prompts use, synonyms, WordNet synsets.

``NAMES`` are what prompts and zero-shot classifiers say (the papers' "class names"); ``SYNONYMS`` feed the
web-like upstream captions; ``SYNSETS`` map each class to WordNet 3.0 (glosses and hypernyms for prompts).
"""
from __future__ import annotations

#: Fashion-MNIST's own label strings, index = label id.
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

#: The class names used in prompts and zero-shot classifiers (lower case, singular where English allows).
NAMES = ["t-shirt", "trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]

#: Other words a web caption might use for the same thing (first entry is NAMES[i]).
SYNONYMS = [
    ["t-shirt", "tee", "tee shirt", "top"],
    ["trousers", "pants", "slacks", "jeans"],
    ["pullover", "sweater", "jumper"],
    ["dress", "frock", "gown"],
    ["coat", "jacket", "overcoat"],
    ["sandal", "sandals", "flip-flop"],
    ["shirt", "blouse", "button-down"],
    ["sneaker", "trainer", "running shoe"],
    ["bag", "handbag", "purse", "tote"],
    ["ankle boot", "boot", "bootee"],
]

#: WordNet 3.0 synset per class (name.pos.nn), chosen by gloss.
SYNSETS = [
    "jersey.n.03",     # T-shirt: a close-fitting pullover shirt
    "trouser.n.01",    # (usually in the plural) a garment extending from the waist to the knee or ankle
    "sweater.n.01",    # a crocheted or knitted garment covering the upper part of the body
    "dress.n.01",      # a one-piece garment for a woman
    "coat.n.01",       # an outer garment that has sleeves and covers the body from shoulder down
    "sandal.n.01",     # a shoe consisting of a sole fastened by straps to the foot
    "shirt.n.01",      # a garment worn on the upper half of the body
    "gym_shoe.n.01",   # sneaker: a canvas shoe with a pliable rubber sole
    "bag.n.04",        # handbag: a container used for carrying money and small personal items
    "boot.n.01",       # ankle boot: footwear that covers the whole foot and lower leg
]

NUM_CLASSES = len(NAMES)
