"""A small English vocabulary and the random sentences, titles and labels built from it."""

from __future__ import annotations

import random

WORDS = tuple(
    """
    able about above across act add after again age ago air all almost alone along also always among and
    animal answer any apple area arm around art ask away baby back ball bank base bear beat bed before begin
    bell best bird black blue boat body bone book both box boy bread bring brown build busy buy cake call
    came can car card care carry case cat cell chair change child city class clean clear close cloud coast
    cold color come common cook corn cost could count cover cow cross crowd cup cut dance dark day deep
    desk die dog door down draw dream dress drink drive drop dry duck during each early earth east easy eat
    edge egg end enough even ever every eye face fact fair fall farm fast fat father feel field fight fill
    find fine fire first fish five flat floor flow flower fly food foot force forest form four free fresh
    friend from front fruit full game garden gate give glad glass go gold good grass great green ground grow
    hair half hand happy hard hat have head hear heart heat heavy help here high hill hold hole home hope
    horse hot hour house huge idea inch iron island job join jump just keep key kind king kitchen know lake
    land large last late laugh lead leaf learn leave left leg less letter level light like line lion list
    little live long look lost love low main make man many map mark market meat meet metal middle milk mind
    minute miss money month moon more morning most mother mountain mouth move music name near neck need nest
    never new next night noise north nose note number ocean office often old open order other paper park
    part party pass past path pay pen people pick piece place plain plan plant play point pool poor port
    power press pull push quick quiet rain reach read ready real red rest rich ride right ring river road
    rock roof room root rope round row rule run safe salt sand save school sea seat second seed send sense
    serve seven shape sheep ship shoe shop short show side sign silver simple sing sister sit size skin sky
    sleep slow small smile snow soft soil song soon sound south space speak speed spring square stand star
    start state station stay step stick still stone stop store story street strong sugar summer sun table
    tail take talk tall teach team tell ten test thick thin thing think three time tiny today tool top town
    track trade train tree true turn under until upon valley very voice wait walk wall warm wash watch water
    wave way weather week well west wheel white whole wide wild wind window winter wire wish wood word work
    world write yard year yellow young
    """.split()  # noqa: SIM905 (a word list reads better as prose)
)
SHORT_WORDS = tuple(word for word in WORDS if 3 <= len(word) <= 5)


def sentence(rng: random.Random, low: int = 5, high: int = 12) -> str:
    words = rng.choices(WORDS, k=rng.randint(low, high))
    return " ".join(words).capitalize() + rng.choice(".....?!")


def title(rng: random.Random, low: int = 2, high: int = 4) -> str:
    return " ".join(word.capitalize() for word in rng.choices(WORDS, k=rng.randint(low, high)))


def distinct_words(rng: random.Random, k: int, pool: tuple[str, ...] = SHORT_WORDS) -> list[str]:
    return rng.sample(pool, k)
