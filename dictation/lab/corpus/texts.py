"""Dictation-like English sentences for synthetic speakers.

Two sources: WordNet's example sentences (Debian `wordnet-base`, read from disk) and
sentences generated from templates with numbers, dates, times, money, names and
punctuation, written the way Whisper writes them (digits, "$1,250", "3:45 p.m.",
"March 14th"). Everything goes through `dictation.app.text.clean_transcript`.
"""

from __future__ import annotations

import random
import re
from functools import lru_cache
from pathlib import Path

from dictation.app.text import clean_transcript

WORDNET_DIRS = (Path("/usr/share/wordnet"), Path("/usr/share/wordnet/dict"))
WORDNET_HINT = "apt-get install wordnet-base"
_MIN_WORDS, _MAX_WORDS = 5, 22

NAMES = [
    "Anna",
    "Ben",
    "Carlos",
    "Diana",
    "Ethan",
    "Fatima",
    "George",
    "Hannah",
    "Ivan",
    "Julia",
    "Kevin",
    "Laura",
    "Mohammed",
    "Nina",
    "Oliver",
    "Priya",
    "Quentin",
    "Rachel",
    "Samuel",
    "Tanya",
    "Umar",
    "Victoria",
    "William",
    "Xin",
    "Yusuf",
    "Zoe",
    "Michael",
    "Sarah",
    "David",
    "Emma",
    "James",
    "Olivia",
    "Daniel",
    "Sophie",
    "Lucas",
    "Grace",
    "Henry",
    "Chloe",
    "Arthur",
    "Mia",
]
SURNAMES = [
    "Smith",
    "Garcia",
    "Chen",
    "Patel",
    "Johnson",
    "Müller",
    "Okafor",
    "Nguyen",
    "Brown",
    "Kowalski",
    "Rossi",
    "Tanaka",
    "Walker",
    "Silva",
]
PLACES = [
    "Boston",
    "Denver",
    "Chicago",
    "London",
    "Paris",
    "Berlin",
    "Toronto",
    "Sydney",
    "Madrid",
    "Dublin",
    "Seattle",
    "Austin",
    "Glasgow",
    "Lisbon",
    "Oslo",
    "Vienna",
    "Nairobi",
    "Mumbai",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
ITEMS = [
    "report",
    "invoice",
    "contract",
    "presentation",
    "budget",
    "spreadsheet",
    "letter",
    "proposal",
    "schedule",
    "order",
    "ticket",
    "receipt",
    "manual",
    "draft",
    "summary",
]
GOODS = [
    "chairs",
    "boxes",
    "printers",
    "laptops",
    "bottles",
    "tickets",
    "pages",
    "cables",
    "folders",
    "batteries",
    "plants",
    "cups",
]
TEAMS = ["sales", "marketing", "support", "design", "finance", "legal", "research", "engineering"]

TEMPLATES = (
    "Please call {name} at {time} on {weekday}.",
    "The invoice for {money} is due on {month} {ordinal}.",
    "We sold {num} {goods} last week, up {pct} from {month}.",
    "The meeting has been moved to {weekday}, {month} {ordinal}, at {hour} {ampm}.",
    "My flight to {place} leaves from gate {small} at {time}.",
    "Order {small} {goods} and {small2} {goods2} for the {team} team.",
    "Dear {name}, thank you for your letter of {month} {ordinal}.",
    "The temperature in {place} dropped to {small} degrees overnight.",
    "Reply to {name}: yes, I can make it on the {ordinal}.",
    "In {year}, the company had {big} employees in {place}.",
    "Remind me to send the {item} to {name} {surname} before {time}.",
    "Can you check whether the {item} for {place} was approved?",
    "The {team} budget for {year} is {money}, which is {pct} more than last year.",
    "Note to self: buy {small} {goods} and pick up the {item} on {weekday}.",
    "{name} said the train from {place} arrives at {time}.",
    "Room {room} is booked from {hour} to {hour2} {ampm} on {weekday}.",
    "Our revenue grew by {pct} to {money} in the third quarter.",
    "Hi {name}, could we move our call to {weekday} at {time}?",
    "The package weighs {small} kilograms and costs {money} to ship.",
    "Please update the {item} with the new figures from {month}.",
    "Chapter {small}, page {page}: the results are summarised in table {small2}.",
    "I'll be out of the office from {month} {ordinal} until {month2} {ordinal2}.",
    "The {item} has {page} pages, so let's review it in {small} parts.",
    "Is {name} {surname} joining us in {place} next {weekday}?",
    "We need {big} signatures by the end of {month}.",
    "Thanks, {name}! The {item} looks great.",
    "Add {name}'s phone number to the contact list, please.",
    "The bus leaves at {time}, so don't be late.",
    "About {pct} of the survey's {big} respondents said they were happy.",
    "The project started on {month} {ordinal}, {year}, and ended {small} months later.",
    "Let's meet at {num} {street} Street at {hour} {ampm}.",
    "Send {money} to {name} for the {item}, and keep the receipt.",
    "The score was {small} to {small2} after extra time.",
    "Why did the {item} from {place} arrive {small} days late?",
    "Her new address is {num} {street} Road, {place}.",
    "I think the {team} team should see this {item} first.",
    "Tickets cost {money} each, or {money2} for a group of {small}.",
    "Turn left after {small} blocks, then walk for about {small2} minutes.",
    "The {item} was signed by {name} {surname} on {weekday}.",
    "Wait, did you say {big} or {big2}?",
)
STREETS = ["Oak", "Maple", "Church", "Mill", "Station", "Park", "High", "Elm", "King", "Queen", "Bridge", "Market"]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _money(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"${rng.randint(2, 99)}"
    if rng.random() < 0.5:
        return f"${rng.randint(100, 9999):,}"
    return f"${rng.randint(1, 99)}.{rng.randint(10, 99)}"


def _time(rng: random.Random) -> str:
    hour, minute = rng.randint(1, 12), rng.choice((0, 5, 10, 15, 20, 30, 40, 45, 50))
    ampm = rng.choice(("a.m.", "p.m."))
    return f"{hour}:{minute:02d} {ampm}" if minute else f"{hour} {ampm}"


def template_sentence(rng: random.Random) -> str:
    """One filled template, deterministic given the generator state."""
    hour = rng.randint(1, 10)
    slots = {
        "name": rng.choice(NAMES),
        "surname": rng.choice(SURNAMES),
        "place": rng.choice(PLACES),
        "weekday": rng.choice(WEEKDAYS),
        "month": rng.choice(MONTHS),
        "month2": rng.choice(MONTHS),
        "ordinal": _ordinal(rng.randint(1, 31)),
        "ordinal2": _ordinal(rng.randint(1, 31)),
        "time": _time(rng),
        "hour": str(hour),
        "hour2": str(hour + rng.randint(1, 2)),
        "ampm": rng.choice(("a.m.", "p.m.")),
        "money": _money(rng),
        "money2": _money(rng),
        "pct": f"{rng.randint(2, 95)}%",
        "num": str(rng.randint(12, 480)),
        "small": str(rng.randint(2, 12)),
        "small2": str(rng.randint(2, 12)),
        "big": f"{rng.randint(1000, 90000):,}",
        "big2": f"{rng.randint(1000, 90000):,}",
        "year": str(rng.randint(1950, 2030)),
        "room": str(rng.randint(101, 450)),
        "page": str(rng.randint(13, 350)),
        "item": rng.choice(ITEMS),
        "goods": rng.choice(GOODS),
        "goods2": rng.choice(GOODS),
        "team": rng.choice(TEAMS),
        "street": rng.choice(STREETS),
    }
    text = rng.choice(TEMPLATES).format(**slots)
    # "p.m." at the end of a sentence takes no second full stop.
    text = re.sub(r"(?<=[ap]\.m\.)\.", "", text)
    return clean_transcript(text)


def _wordnet_dir() -> Path | None:
    for d in WORDNET_DIRS:
        if (d / "data.noun").exists():
            return d
    return None


def _tidy_example(raw: str) -> str | None:
    """A WordNet example as a sentence: capitalised, terminal punctuation; None if unusable."""
    text = clean_transcript(raw)
    words = text.split()
    if not (_MIN_WORDS <= len(words) <= _MAX_WORDS):
        return None
    # Skip fragments the synthesizers read badly or that are not prose.
    if re.search(r"[^A-Za-z0-9 ,.;:'!?\-$%]", text) or "--" in text or text.startswith("'"):
        return None
    text = text[0].upper() + text[1:]
    if text[-1] not in ".!?":
        text = text.rstrip(",;:-") + "."
    return text


@lru_cache(maxsize=1)
def wordnet_sentences() -> tuple[str, ...]:
    """WordNet's example sentences (sorted, unique); empty when wordnet-base is absent."""
    d = _wordnet_dir()
    if d is None:
        return ()
    found: set[str] = set()
    for part in ("noun", "verb", "adj", "adv"):
        for line in (d / f"data.{part}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue  # licence header
            for raw in re.findall(r'"([^"]+)"', line.split("|", 1)[1]):
                s = _tidy_example(raw)
                if s:
                    found.add(s)
    return tuple(sorted(found))


def sentences_for(speaker: str, count: int, seed: int) -> list[str]:
    """`count` distinct sentences for one speaker: about half WordNet, half templates.

    Deterministic from (seed, speaker); different speakers read mostly different text.
    """
    rng = random.Random(f"{seed}:{speaker}")
    pool = wordnet_sentences()
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        s = rng.choice(pool) if pool and rng.random() < 0.5 else template_sentence(rng)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out
