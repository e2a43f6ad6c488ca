"""Entity kinds of the out-of-distribution synthetic QA set, part two: festivals, software, manuscripts.

Like part one (`ood_science`), written to share no kind and no sentence with the training
generator.
"""

from __future__ import annotations

from ragcompress_tools.synthqa.ood_parts import (
    Fact,
    Kind,
    choice,
    code,
    date,
    integer,
    invented,
    person,
    year,
)

FESTIVAL = Kind(
    kind="festival",
    name=lambda names: (f"the {(w := names.word())} {names.rng.choice(('Lantern Fair', 'Reed Festival', 'Harvest Games', 'Kite Week', 'Salt Carnival'))}", w),
    noun="the festival",
    speaker="a long-serving volunteer",
    facts=(
        Fact("venue", "name", invented("{}"),
             ("Host town", "Venue"),
             ("Every edition of {E} has been staged in {v}.", "Each year {v} fills up with guests for {E}."),
             ("It's always {v}; the whole place turns into one big stage.",),
             ("Where is {E} held?", "In which town can {E} be visited?")),
        Fact("first_held", "year", year(1890, 2012),
             ("First edition", "Running since"),
             ("The opening edition of {E} took place in {v}.", "{E} has been running every year since {v}."),
             ("We go back to {v}, when it was only a handful of stalls.",),
             ("When did {E} take place for the first time?", "What year marks the start of {E}?")),
        Fact("visitors", "number", integer(1500, 480_000, step=100),
             ("Attendance (last edition)", "Visitors"),
             ("Ticket counts show {v} visitors at the latest {E}.", "Last time, {v} people came through the gates of {E}."),
             ("We counted {v} guests last year, a record for us.",),
             ("How many people attended the most recent {E}?", "What was the turnout at the last {E}?")),
        Fact("director", "name", person(),
             ("Artistic director", "Programme curator"),
             ("The programme of {E} is chosen by {v}.", "{v} decides which acts appear at {E}."),
             ("{v} picks every act after listening to all the demos.",),
             ("Who curates the programme of {E}?", "Who is responsible for selecting the performers at {E}?")),
        Fact("days", "number", integer(2, 16, words=True),
             ("Duration (days)", "Length"),
             ("{E} stretches over {v} days.", "Stalls at {E} stay open for {v} days in a row."),
             ("It goes on for {v} days, and the last night is the loudest.",),
             ("For how many days does {E} last?", "How long, in days, does {E} go on?")),
        Fact("month", "term", choice(("January", "March", "April", "May", "June", "July", "August",
                                       "September", "October", "November")),
             ("Month", "Held in"),
             ("{E} always falls in {v}.", "Each {v}, {E} comes round again."),
             ("Come in {v}; any other month and you'll find the square empty.",),
             ("In which month does {E} take place?", "At what time of year, by month, is {E} on?")),
        Fact("highlight", "term", choice(("a lantern procession", "the midnight reed race", "a bread-baking contest",
                                           "the rooftop choir", "a fireworks barge", "the stilt parade",
                                           "a kite duel over the harbour")),
             ("Best-known event", "Highlight"),
             ("Above all, people come to {E} for {v}.", "The moment everyone waits for at {E} is {v}."),
             ("Everyone waits for {v}; the rest is a warm-up.",),
             ("What is the most famous attraction at {E}?", "Which event draws the biggest crowds at {E}?")),
    ),
    asides=(
        "Parking is scarce, so most guests arrive by the shuttle bus.",
        "Entry is free for children under twelve.",
        "Rain has cancelled the closing night only a few times.",
        "Local schools close early on the opening day.",
    ),
)  # fmt: skip


def _version(rng, names) -> str:
    return f"{rng.randint(1, 14)}.{rng.randint(0, 30)}.{rng.randint(0, 12)}"


def _config_file(rng, names) -> str:
    word = names.word().lower()
    return rng.choice((f"{word}.toml", f".{word}rc", f"/etc/{word}.conf", f"{word}.ini"))


SOFTWARE = Kind(
    kind="software",
    name=lambda names: ((w := names.word()), w),
    noun="the project",
    speaker="one of the core developers",
    facts=(
        Fact("version", "code", code(_version),
             ("Current release", "Latest stable"),
             ("The newest stable build of {E} is {v}.", "Users of {E} are asked to upgrade to {v}."),
             ("We shipped {v} and nothing has broken yet.",),
             ("Which release number is the current stable {E}?", "What version of {E} should users install today?")),
        Fact("released", "date", date(2019, 2034),
             ("Release date", "Published"),
             ("The current {E} release was tagged on {v}.", "Downloads of the latest {E} opened on {v}."),
             ("The tag went out on {v}, late in the evening.",),
             ("On what date did the latest {E} release come out?", "When was the present {E} release tagged?")),
        Fact("codename", "name", invented("{}"),
             ("Codename", "Release name"),
             ('Developers nicknamed this cycle of {E} "{v}".', 'Inside the team the current {E} is simply called "{v}".'),
             ('We call this one "{v}", after the office cat.',),
             ("What nickname does the current {E} release go by?", "By what codename is the present {E} known?")),
        Fact("licence", "term", choice(("MPL-2.0", "Apache-2.0", "BSD-3-Clause", "LGPL-2.1", "ISC", "EUPL-1.2", "Zlib")),
             ("Licence", "License"),
             ("{E} may be copied and changed under the terms of {v}.", "Source code of {E} ships under {v}."),
             ("It's {v}, so companies can use it without calling us.",),
             ("Under which license can {E} be redistributed?", "What are the licensing terms of {E}?")),
        Fact("port", "number", integer(1025, 9990, plain=True),
             ("Default port", "Listens on"),
             ("Out of the box, {E} accepts connections on TCP port {v}.", "Unless told otherwise, {E} binds to port {v}."),
             ("It binds to {v} by default; change it if that clashes.",),
             ("Which TCP port does {E} use unless configured otherwise?", "What port number does a fresh {E} install listen on?")),
        Fact("maintainer", "name", person(),
             ("Lead maintainer", "Release manager"),
             ("Releases of {E} are signed off by {v}.", "{v} has the final word on what goes into {E}."),
             ("{v} signs every release, so blame goes there.",),
             ("Who is in charge of {E} releases?", "Which person approves new versions of {E}?")),
        Fact("config", "code", code(_config_file),
             ("Config file", "Settings file"),
             ("Settings for {E} are read from {v}.", "To change how {E} behaves, edit {v}."),
             ("Everything lives in {v}; there is no GUI for it.",),
             ("What file does {E} read its settings from?", "Where are the options of {E} stored?")),
        Fact("memory", "number", integer(64, 8192, "MiB", step=64),
             ("Minimum RAM (MiB)", "Memory required"),
             ("{E} will not start with less than {v} MiB of memory.", "Plan on at least {v} MiB of RAM for {E}."),
             ("Give it {v} MiB at the very least, more for big projects.",),
             ("How much memory is the minimum for running {E}?", "What is the smallest amount of RAM {E} can work with?")),
    ),
    asides=(
        "Nightly builds are published but not supported.",
        "The issue tracker moved to a self-hosted instance some time ago.",
        "Packaging for several distributions is done by volunteers.",
        "A plugin interface is planned but not yet stable.",
    ),
)  # fmt: skip


def _shelfmark(rng, names) -> str:
    return f"{rng.choice(('MS', 'Cod.', 'Add. MS', 'Lat.'))} {rng.choice('ABCDFGHKQ')}.{rng.randint(10, 999)}"


MANUSCRIPT = Kind(
    kind="manuscript",
    name=lambda names: (f"the {(w := names.word())} Codex", w),
    noun="the codex",
    speaker="the curator of manuscripts",
    facts=(
        Fact("shelfmark", "code", code(_shelfmark),
             ("Shelfmark", "Call number"),
             ("Readers must request {E} as {v}.", "The catalogue files {E} under {v}."),
             ("Ask for {v} at the desk and you'll get it within the hour.",),
             ("Under what call number is {E} filed?", "How should a reader order {E} from the stacks?")),
        Fact("leaves", "number", integer(24, 640),
             ("Folios", "Leaves"),
             ("{E} is made up of {v} parchment leaves.", "Counting carefully, {E} has {v} leaves."),
             ("There are {v} folios, a few of them badly cropped.",),
             ("How many folios does {E} contain?", "What is the leaf count of {E}?")),
        Fact("scribe", "name", person(),
             ("Scribe", "Copied by"),
             ("The hand in {E} has been identified as that of {v}.", "Scholars credit the copying of {E} to {v}."),
             ("The hand is {v}'s; you can tell by the ligatures.",),
             ("Who wrote out {E}?", "Whose handwriting fills {E}?")),
        Fact("language", "term", choice(("Middle Breton", "Old Occitan", "Church Slavonic", "Classical Armenian",
                                          "Old Norse", "Syriac", "Middle Welsh", "Old Georgian")),
             ("Language", "Written in"),
             ("The text of {E} is in {v}.", "Every page of {E} uses {v}."),
             ("It's all {v}, apart from two later notes.",),
             ("What language is {E} written in?", "In which tongue was the text of {E} composed?")),
        Fact("century", "term", choice(("9th century", "10th century", "11th century", "12th century",
                                         "13th century", "14th century", "15th century")),
             ("Date", "Period"),
             ("Palaeographers place {E} in the {v}.", "{E} was produced during the {v}."),
             ("We date it to the {v}, from the script.",),
             ("To which century does {E} belong?", "When, roughly, was {E} made?")),
        Fact("library", "name", invented("the {} Library"),
             ("Holding institution", "Kept at"),
             ("Today {E} is kept at {v}.", "{E} belongs to {v}."),
             ("It has been with us, {v}, since the sale.",),
             ("Which institution holds {E} today?", "Where is {E} now preserved?")),
        Fact("binding", "term", choice(("oak boards covered in calfskin", "limp vellum", "red goatskin",
                                         "blind-tooled pigskin", "green velvet over pasteboard")),
             ("Binding", "Covers"),
             ("{E} is bound in {v}.", "A binding of {v} protects {E}."),
             ("The covers are {v}, a later replacement.",),
             ("What covers {E}?", "What material was used to bind {E}?")),
    ),
    asides=(
        "Several leaves show water damage along the lower margin.",
        "A facsimile is available in the reading room.",
        "Ownership marks suggest at least three earlier owners.",
        "Digitised images are released one quire at a time.",
    ),
)  # fmt: skip
