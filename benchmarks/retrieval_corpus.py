"""The retrieval benchmark's documents: ten invented product manuals and questions on them.

Every product, number, code and name here was made up for this benchmark, so
the model cannot know the answers from training: it finds them in the
passages or not at all. Each manual is written at run time in one of four
formats (txt, md, html, pdf), so every loader is exercised. ``filler_pages``
makes look-alike manuals of other invented products, to grow the index to
10,000 chunks with text of the same vocabulary.
"""

from __future__ import annotations

import html
import random
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Section:
    heading: str
    body: str  # paragraphs separated by blank lines; lines starting "- " are a list
    table: tuple[tuple[str, str], ...] = ()
    columns: tuple[str, str] = ("Item", "Value")


@dataclass(frozen=True)
class Manual:
    filename: str  # its suffix picks the format it is written in
    title: str
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class Question:
    filename: str  # the manual that holds the answer
    text: str
    answers: tuple[str, ...]  # any of these spellings, case-insensitive


MANUALS: tuple[Manual, ...] = (
    Manual(
        "brevona-x2-manual.pdf",
        "Brevona X2 Espresso Machine - User Manual",
        (
            Section(
                "Getting started",
                "Thank you for choosing the Brevona X2 from Caldera Home Appliances. Rinse the "
                "water tank before first use and place the machine on a dry, level surface at "
                "least 10 cm from the wall.\n\n"
                "The removable water tank holds 1.85 litres. Fill it with fresh, cold water up to "
                "the MAX line. Press the Lumo key once: the ring around it pulses white while the "
                "boiler heats. Preheating takes 94 seconds, after which the ring stays lit.",
            ),
            Section(
                "Brewing espresso",
                "Grind fresh beans on grinder step 11 for espresso; coarser steps suit a long "
                "coffee. Dose the portafilter, tamp evenly and lock it into the group head.\n\n"
                "Press the single-cup key for a 36 ml shot. The brew temperature is fixed at "
                "93.5 °C. To program a different volume, hold the cup key until the shot reaches "
                "the volume you want and release it; the machine remembers it.",
            ),
            Section(
                "Cleaning and descaling",
                "Empty the drip tray daily and rinse the portafilter after every session. The "
                "machine counts your shots and asks for descaling every 340 shots: the Lumo ring "
                "then blinks blue.\n\n"
                "Use two Calvex descaling tablets dissolved in a full tank. Start the program by "
                "holding the Lumo key and the steam key together. The descaling program takes "
                "27 minutes and ends with two rinse cycles; do not interrupt it.",
            ),
            Section(
                "Troubleshooting",
                "- E47: the water filter is clogged. Remove the filter cartridge, rinse it or "
                "replace it, then restart.\n"
                "- E52: the pump has run dry. Refill the tank and press the Lumo key.\n"
                "- Amber ring blinking: the drip tray is full or missing.\n"
                "- Coffee too cold: run a blank shot first to warm the group head.",
            ),
        ),
    ),
    Manual(
        "skylark-v7-guide.md",
        "Halvren Aero Skylark V7 - Pilot Guide",
        (
            Section(
                "Specifications",
                "The Skylark V7 is a folding camera drone for travel and mapping.",
                (
                    ("Take-off weight", "612 g"),
                    ("Maximum flight time", "41 minutes"),
                    ("Battery", "4,750 mAh intelligent flight battery"),
                    ("Maximum speed", "19 m/s in Sport mode"),
                    ("Camera", "1-inch sensor, 5.4K video"),
                ),
            ),
            Section(
                "Pairing the controller",
                "Switch on the drone and the controller. Hold the power button and the Return "
                "button on the controller together for 7 seconds. The controller LED blinks "
                "white while searching and turns violet when pairing has succeeded. If it turns "
                "red, move the drone closer and try again.",
            ),
            Section(
                "Flight modes",
                "- Normal mode: balanced speed and stability for most flights.\n"
                "- Cinematic mode: limits speed to 9 m/s and smooths every movement.\n"
                "- Tern mode: the drone locks on to a moving subject and follows it, keeping it "
                "in frame.\n"
                "- Sport mode: full speed, obstacle sensing off.",
            ),
            Section(
                "Safety and return to home",
                "Before each flight, check the propellers for cracks. The drone records its home "
                "point when it gets a GPS fix. When the signal is lost or the battery is low it "
                "climbs to the return-to-home altitude, which is 65 metres by default, and flies "
                "back. A low-battery warning sounds at 18 percent; at 9 percent the drone lands "
                "where it is.",
            ),
            Section(
                "Firmware updates",
                "Updates arrive through the Halvren Fly app on the HA-Stable channel. Keep the "
                "battery above 50 percent during an update and do not switch the drone off while "
                "the rear arm lights cycle green.",
            ),
        ),
    ),
    Manual(
        "trelvo-e-city-3.html",
        "Trelvo E-City 3 Electric Bike - Owner's Handbook",
        (
            Section(
                "Motor and assistance",
                "The E-City 3 has a 250 W rear hub motor with 58 Nm of torque. Assistance stops "
                "at 25 km/h, as the law requires. Choose one of three assist levels with the "
                "plus and minus keys on the handlebar remote:\n\n"
                "- Eco: longest range, gentle support.\n"
                "- Tour: everyday riding.\n"
                "- Surge: the strongest level, for hills and headwind.",
            ),
            Section(
                "Battery and charging",
                "The frame battery stores 522 Wh. Charge it only with the supplied TC-36 charger. "
                "An empty battery is fully charged in 4 hours 40 minutes. Store the bike indoors "
                "in winter and keep the battery between 30 and 60 percent if it will not be used "
                "for a month.",
                (
                    ("Battery capacity", "522 Wh"),
                    ("Charger", "TC-36, 42 V 4 A"),
                    ("Full charge", "4 hours 40 minutes"),
                ),
            ),
            Section(
                "Tyres",
                "Check the tyre pressure every two weeks. Inflate the front tyre to 3.2 bar and "
                "the rear tyre to 3.6 bar; the rear carries more of the rider's weight and the "
                "motor.",
            ),
            Section(
                "Display warnings",
                "- W09: the speed sensor magnet on the rear spoke is misaligned. Move it to within "
                "5 mm of the sensor.\n"
                "- W14: the battery is too cold to deliver full power. Warm it indoors.\n"
                "- W21: the remote has lost contact with the display.",
            ),
            Section(
                "Maintenance",
                "Lubricate the chain every 280 km, or after every ride in the rain. Take the bike "
                "to a Trelvo dealer for its first service at 400 km, when cables settle and the "
                "brakes need adjusting.",
            ),
        ),
    ),
    Manual(
        "greenvault-gc40.txt",
        "GreenVault GC-40 Greenhouse Controller - Installation and Operation",
        (
            Section(
                "Overview",
                "The GC-40 regulates ventilation, irrigation and heating in greenhouses of up to "
                "300 square metres. It reads up to 23 wired or wireless sensors. For soil "
                "moisture use the SP-7 soil probe; other probes are not supported.",
            ),
            Section(
                "Ventilation",
                "By default the roof vents open when the air temperature reaches 31 °C and close "
                "again below 28 °C. Both thresholds can be changed in the Climate menu. In wind "
                "above 45 km/h the vents close whatever the temperature, to protect the hinges.",
            ),
            Section(
                "Irrigation",
                "Each irrigation zone runs a misting cycle of 45 seconds. Set the interval per zone "
                "in the Water menu; a rain sensor can skip cycles on wet days.",
            ),
            Section(
                "Alarms",
                "The frost alarm sounds when the air drops below 3 °C and shows code AL-3 on the "
                "display. A high-humidity alarm shows AL-8. Alarms are also sent to the GreenVault "
                "Hub app.",
            ),
            Section(
                "Network and reset",
                "To pair the controller with the GreenVault Hub, enter the default PIN 8826. The "
                "built-in web interface listens on port 7311. To restore factory settings, hold "
                "the SET and DOWN keys together for 13 seconds until the display shows rSt.",
            ),
        ),
    ),
    Manual(
        "aquanest-p12.pdf",
        "Aquanest P12 Canister Filter Pump - Instructions",
        (
            Section(
                "Technical data",
                "The Aquanest P12 is an external canister filter for freshwater and marine "
                "aquariums.",
                (
                    ("Flow rate", "1,150 litres per hour"),
                    ("Suitable for tanks up to", "380 litres"),
                    ("Power consumption", "17 W"),
                    ("Noise level", "29 dB"),
                ),
            ),
            Section(
                "Filter media",
                "Fill the baskets from the bottom up: ceramic rings, then the Biofoam Grade 3 "
                "sponge, then fine floss. Rinse the sponge in tank water, never tap water, so the "
                "bacteria survive. Replace the sponge every 9 weeks and the floss every two.",
            ),
            Section(
                "Priming and start-up",
                "Fill the canister with water before the first start. Pump the priming button "
                "until water flows through the hoses, then plug the pump in. Air trapped in the "
                "head makes a gurgling sound that stops within a few minutes.",
            ),
            Section(
                "Troubleshooting",
                "A rattling noise usually means the impeller shaft is worn. Replace it with the "
                "ceramic shaft CS-12, which is sold with two rubber bearings. Reduced flow "
                "usually means clogged floss or a kinked hose.",
            ),
        ),
    ),
    Manual(
        "norvik-ht9.md",
        "Norvik HT-9 Air-to-Water Heat Pump - Operating Manual",
        (
            Section(
                "Performance",
                "The HT-9 heats your home and hot water from outdoor air. At A7/W35 it reaches "
                "a coefficient of performance (COP) of 4.7. Below 2 °C outside it defrosts the "
                "outdoor coil every 55 minutes, which takes about three minutes.",
            ),
            Section(
                "Installation",
                "Leave at least 35 cm of clearance behind the outdoor unit and 1 m in front of "
                "it, so air can flow freely. Mount it on the supplied anti-vibration feet, and "
                "never under a roof edge where ice can fall on it.",
            ),
            Section(
                "Operating modes",
                "- Auto: heating and hot water by the weather curve.\n"
                "- Nightfall mode: the quiet mode, which lowers fan and compressor speed between "
                "22:00 and 06:00.\n"
                "- Holiday: keeps the house at 12 °C and pauses hot water.\n\n"
                "To protect against legionella, the HT-9 heats the hot-water tank to 65 °C every "
                "11 days.",
            ),
            Section(
                "Fault codes",
                "The display of the indoor unit shows a code when the heat pump stops itself.",
                (
                    ("F31", "Water flow too low: check the filter and the circulation pump"),
                    ("F08", "Outdoor temperature sensor open circuit"),
                    ("F17", "High-pressure switch tripped"),
                ),
                ("Code", "Meaning"),
            ),
        ),
    ),
    Manual(
        "mowbot-lumen-5.html",
        "Pellaro Mowbot Lumen 5 Robotic Mower - User Guide",
        (
            Section(
                "Cutting",
                "Set the cutting height with the dial under the lid, from 22 mm to 68 mm. Start "
                "high in spring and lower it a step each week. The Mowbot Lumen 5 handles slopes "
                "of up to 43 percent.",
            ),
            Section(
                "Boundary wire",
                "Lay the boundary wire around the lawn, at most 400 metres in total, and 30 cm in "
                "from any edge the mower must not cross. Keep 1 m between the wire and a "
                "neighbour's boundary wire.",
            ),
            Section(
                "Weather",
                "A rain sensor on the lid stops mowing when it gets wet. The mower returns to its "
                "charging station and waits 95 minutes after the sensor dries before it starts "
                "again.",
            ),
            Section(
                "Security",
                "The default PIN code is 0417; change it in the Pellaro app. If the mower is "
                "lifted without the PIN, the Lumen Guard alarm sounds and the mower is locked.",
            ),
            Section(
                "Blades",
                "Turn the mower over on a soft surface and replace the three Pellaro TriEdge "
                "blades every 7 weeks in the mowing season. Wear gloves: the blades are sharp.",
            ),
        ),
    ),
    Manual(
        "quillon-sr2.txt",
        "Quillon SR-2 Resin-Free 3D Printer - Operating Guide",
        (
            Section(
                "Temperatures",
                "The hot end reaches a maximum nozzle temperature of 285 °C, enough for PETG and "
                "nylon. The heated bed goes up to 115 °C. Let both cool below 50 °C before "
                "touching the print head.",
            ),
            Section(
                "Bed levelling",
                "The SR-2 probes the bed at 49 points before each print and builds a mesh to "
                "correct for small warps. Clean the bed with isopropyl alcohol so the probe reads "
                "it correctly.",
            ),
            Section(
                "Recommended settings for PLA",
                "Print PLA at 205 °C with the bed at 60 °C. Use a retraction distance of 1.3 mm "
                "at 35 mm/s to prevent stringing, and keep the part cooling fan at 100 percent "
                "after the first layer.",
            ),
            Section(
                "Belts",
                "Belt tension is checked by sound. Pluck the X belt in the middle of its span: a "
                "correctly tensioned belt rings at 96 Hz. Tighten or loosen it with the thumb "
                "screw at the left end.",
            ),
            Section(
                "Error messages",
                "- Q-112: thermal runaway. The printer stops heating at once. Check that the "
                "thermistor sits fully in the heater block.\n"
                "- Q-205: the filament sensor detects no filament.\n"
                "- Q-318: the probe did not trigger during levelling.",
            ),
        ),
    ),
    Manual(
        "ostrava-k900-kiln.pdf",
        "Ostrava K-900 Electric Pottery Kiln - Manual",
        (
            Section(
                "About your kiln",
                "The K-900 is a top-loading electric kiln for stoneware and porcelain. Its maximum "
                "temperature is 1,287 °C. The heating elements are made of Ferrolux A1 wire, which "
                "forms a protective oxide layer during the first firing.",
            ),
            Section(
                "The controller",
                "The controller stores 34 firing programs. Program P4 is the bisque firing: it "
                "ramps at 110 °C per hour to 950 °C. Programs P1 to P3 are glaze firings and can "
                "be edited.",
            ),
            Section(
                "Venting",
                "Leave the vent plug out until the kiln reaches 610 °C, so water vapour and "
                "burning organic matter can escape, then put it in for the rest of the firing.",
            ),
            Section(
                "Errors",
                "Err-T7 means the thermocouple has failed or is disconnected: switch the kiln off "
                "and have the thermocouple replaced. Err-R2 means the kiln is heating too slowly, "
                "often because the elements are worn.",
            ),
        ),
    ),
    Manual(
        "keyra-l3-smart-lock.md",
        "Cindral Keyra L3 Smart Lock - Setup Guide",
        (
            Section(
                "Power",
                "The Keyra L3 runs on four AA batteries, which last about 14 months at ten "
                "openings a day. When they run out, power the lock through the emergency USB-C "
                "port hidden under the Cindral badge on the outside.",
            ),
            Section(
                "Codes",
                "The lock stores up to 170 user codes of 4 to 10 digits. Codes can be limited to "
                "certain days or hours in the Cindral Home app.",
            ),
            Section(
                "Auto-lock",
                "After the door closes, the lock bolts itself again. The default auto-lock delay "
                "is 38 seconds; set anything from 5 seconds to 5 minutes in the app.",
            ),
            Section(
                "Bluetooth and reset",
                "In the app's device list the lock appears with a Bluetooth name that starts with "
                "CDL3- followed by four characters of its serial number. To factory-reset it, hold "
                "the reset pin inside the battery cover for 17 seconds until the lock beeps twice.",
            ),
        ),
    ),
)


# Each question with the spellings of its answer, "|" between them.
_ASKED: dict[str, tuple[tuple[str, str], ...]] = {
    "brevona-x2-manual.pdf": (
        ("What error code does the Brevona X2 show for a clogged filter?", "E47"),
        ("How long does the descaling program of the Brevona X2 take?", "27 minutes|27 min"),
        ("After how many shots does the Brevona X2 ask for descaling?", "340"),
        ("How much water does the Brevona X2 water tank hold?", "1.85|1,85"),
        ("Which descaling tablets should I use in the Brevona X2?", "Calvex"),
        ("How long does the Brevona X2 take to preheat?", "94 seconds|94 s"),
    ),
    "skylark-v7-guide.md": (
        ("What is the maximum flight time of the Skylark V7 drone?", "41 minutes|41 min"),
        ("What is the battery capacity of the Skylark V7?", "4,750|4750|4 750"),
        (
            "What is the default return-to-home altitude of the Skylark V7?",
            "65 m|65 metres|65 meters",
        ),
        ("Which Skylark V7 flight mode follows a moving subject?", "Tern"),
        ("What colour does the Skylark V7 controller LED turn when pairing succeeds?", "violet"),
    ),
    "trelvo-e-city-3.html": (
        ("How much torque does the Trelvo E-City 3 motor have?", "58 Nm|58Nm|58 newton"),
        ("What is the strongest assist level on the Trelvo E-City 3 called?", "Surge"),
        ("What pressure should the rear tyre of the Trelvo E-City 3 have?", "3.6|3,6"),
        (
            "Which Trelvo E-City 3 warning means the speed sensor magnet is misaligned?",
            "W09|W 09|W-09",
        ),
        ("What is the capacity of the Trelvo E-City 3 battery?", "522"),
        ("Which charger comes with the Trelvo E-City 3?", "TC-36|TC36|TC 36"),
    ),
    "greenvault-gc40.txt": (
        ("At what temperature does the GreenVault GC-40 open the roof vents by default?", "31"),
        ("What is the default pairing PIN of the GreenVault GC-40?", "8826"),
        ("How many sensors can the GreenVault GC-40 read?", "23"),
        ("Which soil probe works with the GreenVault GC-40?", "SP-7|SP7|SP 7"),
        ("How long must SET and DOWN be held to reset the GreenVault GC-40?", "13 seconds|13 s"),
        ("On which port does the GreenVault GC-40 web interface listen?", "7311"),
        ("What code does the GreenVault GC-40 display for the frost alarm?", "AL-3|AL3|AL 3"),
    ),
    "aquanest-p12.pdf": (
        ("What is the flow rate of the Aquanest P12 filter?", "1,150|1150|1 150"),
        ("What is the largest aquarium the Aquanest P12 is suitable for?", "380"),
        ("How often should the Aquanest P12 sponge be replaced?", "9 weeks|nine weeks"),
        ("Which part fixes a rattling noise in the Aquanest P12?", "CS-12|CS12|CS 12"),
        ("How loud is the Aquanest P12?", "29 dB|29dB|29 decibel"),
    ),
    "norvik-ht9.md": (
        ("Which fault code does the Norvik HT-9 show when the water flow is too low?", "F31"),
        ("What is the quiet mode of the Norvik HT-9 heat pump called?", "Nightfall"),
        (
            "How much clearance is needed behind the Norvik HT-9 outdoor unit?",
            "35 cm|35cm|35 centimet",
        ),
        ("How often does the Norvik HT-9 run its anti-legionella heating?", "11 days|eleven days"),
        ("What COP does the Norvik HT-9 reach at A7/W35?", "4.7|4,7"),
    ),
    "mowbot-lumen-5.html": (
        ("What is the steepest slope the Mowbot Lumen 5 can mow?", "43"),
        ("What is the lowest cutting height of the Mowbot Lumen 5?", "22 mm|22mm|22 millim"),
        (
            "How long does the Mowbot Lumen 5 wait after rain before mowing again?",
            "95 minutes|95 min",
        ),
        ("What is the default PIN code of the Mowbot Lumen 5?", "0417"),
        (
            "What are the replacement blades for the Mowbot Lumen 5 called?",
            "TriEdge|Tri-Edge|Tri Edge",
        ),
    ),
    "quillon-sr2.txt": (
        ("What is the maximum nozzle temperature of the Quillon SR-2?", "285"),
        ("At how many points does the Quillon SR-2 probe the bed?", "49"),
        ("Which error code means thermal runaway on the Quillon SR-2?", "Q-112|Q112|Q 112"),
        (
            "What retraction distance is recommended for PLA on the Quillon SR-2?",
            "1.3 mm|1.3mm|1,3 mm",
        ),
        ("At what frequency should the Quillon SR-2 X belt ring?", "96 Hz|96Hz|96 hertz"),
    ),
    "ostrava-k900-kiln.pdf": (
        ("What is the maximum temperature of the Ostrava K-900 kiln?", "1,287|1287|1 287"),
        ("How many firing programs can the Ostrava K-900 store?", "34"),
        ("Until what temperature should the vent plug stay out in the Ostrava K-900?", "610"),
        ("Which error on the Ostrava K-900 means the thermocouple failed?", "Err-T7|T7"),
        ("What wire are the Ostrava K-900 heating elements made of?", "Ferrolux"),
    ),
    "keyra-l3-smart-lock.md": (
        ("What is the default auto-lock delay of the Keyra L3?", "38 seconds|38 s"),
        ("How many user codes can the Keyra L3 store?", "170"),
        ("How long do the batteries of the Keyra L3 last?", "14 months|fourteen months"),
        ("What does the Keyra L3 Bluetooth name start with?", "CDL3"),
        (
            "How long must the reset pin of the Keyra L3 be held for a factory reset?",
            "17 seconds|17 s",
        ),
    ),
}
QUESTIONS: tuple[Question, ...] = tuple(
    Question(filename, text, tuple(answers.split("|")))
    for filename, asked in _ASKED.items()
    for text, answers in asked
)


def write_manuals(folder: Path) -> list[Path]:
    """Write every manual into ``folder`` in the format its suffix names."""
    writers = {".txt": _write_txt, ".md": _write_md, ".html": _write_html, ".pdf": _write_pdf}
    paths = []
    for manual in MANUALS:
        path = folder / manual.filename
        writers[path.suffix](manual, path)
        paths.append(path)
    return paths


def _blocks(body: str) -> list[str | list[str]]:
    """Paragraphs (str) and lists (list of items) of a section body."""
    blocks: list[str | list[str]] = []
    for chunk in body.split("\n\n"):
        lines = chunk.splitlines()
        if lines and all(line.startswith("- ") for line in lines):
            blocks.append([line[2:] for line in lines])
        else:
            blocks.append(" ".join(lines))
    return blocks


def _write_txt(manual: Manual, path: Path) -> None:
    parts = [manual.title, "=" * len(manual.title), ""]
    for number, section in enumerate(manual.sections, 1):
        heading = f"{number}. {section.heading}"
        parts += [heading, "-" * len(heading), ""]
        for block in _blocks(section.body):
            parts += [f"  * {item}" for item in block] if isinstance(block, list) else [block]
            parts.append("")
        if section.table:
            parts += [f"{key}: {value}" for key, value in section.table] + [""]
    path.write_text("\n".join(parts), encoding="utf-8")


def _write_md(manual: Manual, path: Path) -> None:
    parts = [f"# {manual.title}", ""]
    for section in manual.sections:
        parts += [f"## {section.heading}", ""]
        for block in _blocks(section.body):
            parts += [f"- {item}" for item in block] if isinstance(block, list) else [block]
            parts.append("")
        if section.table:
            first, second = section.columns
            parts += [f"| {first} | {second} |", "| --- | --- |"]
            parts += [f"| {key} | {value} |" for key, value in section.table] + [""]
    path.write_text("\n".join(parts), encoding="utf-8")


def _write_html(manual: Manual, path: Path) -> None:
    e = html.escape
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(manual.title)}</title>",
        "<style>body { font-family: sans-serif; }</style></head><body>",
        "<nav><a href='/'>Home</a> | <a href='/support'>Support</a></nav>",
        f"<main><h1>{e(manual.title)}</h1>",
    ]
    for section in manual.sections:
        parts.append(f"<section><h2>{e(section.heading)}</h2>")
        for block in _blocks(section.body):
            if isinstance(block, list):
                parts.append("<ul>" + "".join(f"<li>{e(item)}</li>" for item in block) + "</ul>")
            else:
                parts.append(f"<p>{e(block)}</p>")
        if section.table:
            first, second = section.columns
            rows = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in section.table)
            parts.append(f"<table><tr><th>{first}</th><th>{second}</th></tr>{rows}</table>")
        parts.append("</section>")
    parts.append("</main><footer>Keep this manual for future reference.</footer></body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")


def _write_pdf(manual: Manual, path: Path) -> None:
    """Two sections a page, with a running footer, as printed manuals have."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(auto=True, margin=15)
    for index, section in enumerate(manual.sections):
        if index % 2 == 0:
            pdf.add_page()
            pdf.set_font("Helvetica", "I", 8)
            pdf.cell(0, 6, f"{manual.title} - page {pdf.page_no()}", new_x="LMARGIN", new_y="NEXT")
        if index == 0:
            pdf.set_font("Helvetica", "B", 16)
            pdf.multi_cell(0, 9, manual.title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "B", 13)
        pdf.multi_cell(0, 8, section.heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 11)
        for block in _blocks(section.body):
            items = [f"- {item}" for item in block] if isinstance(block, list) else [block]
            for item in items:
                pdf.multi_cell(0, 6, item, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        if section.table:
            with pdf.table(col_widths=(60, 110)) as table:
                for row in (section.columns, *section.table):
                    cells = table.row()
                    for cell in row:
                        cells.cell(cell)
            pdf.ln(2)
    pdf.output(str(path))


# Filler: manuals of other invented products, in the corpus's vocabulary.
_SYLLABLES = [
    "ka",
    "lo",
    "ve",
    "ri",
    "dan",
    "mor",
    "sel",
    "tu",
    "bra",
    "fen",
    "qui",
    "zo",
    "nal",
    "pe",
    "tra",
    "vis",
    "ul",
    "gor",
    "mi",
    "sten",
]
_KINDS = (
    "espresso machine",
    "drone",
    "e-bike",
    "greenhouse controller",
    "filter pump",
    "heat pump",
    "robot mower",
    "3D printer",
    "kiln",
    "smart lock",
    "air purifier",
    "dishwasher",
    "water heater",
    "solar inverter",
    "sous-vide cooker",
    "bread maker",
)
_PARTS = (
    "filter",
    "battery",
    "pump",
    "sensor",
    "fan",
    "motor",
    "nozzle",
    "valve",
    "display",
    "controller",
    "heating element",
    "charger",
    "tank",
    "blade",
    "belt",
    "thermostat",
)
_SENTENCES = (
    "Check the {part} every {n} days and clean it with a soft cloth.",
    "Error code {code} means the {part} needs attention; restart the {kind} after fixing it.",
    "The {part} reaches its normal operating temperature of {n} °C after a few minutes.",
    "Replace the {part} after {n} hours of use or when the display shows {code}.",
    "Hold the reset key for {n} seconds to restore the factory settings of the {part}.",
    "The default PIN of the {kind} is {pin}; change it in the app before first use.",
    "Do not run the {kind} without the {part}, or the warranty of {years} years is void.",
    "The {part} uses about {n} W in normal operation and less in eco mode.",
    "Firmware version {n}.{m} improves how the {part} reacts to low voltage.",
    "If the {part} makes a clicking noise, switch the {kind} off and call the service line.",
    "Store the {kind} in a dry place between {m} °C and {n} °C.",
    "Descale or flush the {part} every {n} weeks in areas with hard water.",
)


def filler_documents(seed: int = 0):
    """An endless stream of ``(filename, text)`` look-alike manuals, each ~6,000 characters."""
    rng = random.Random(seed)
    taken = {manual.title.split()[0].lower() for manual in MANUALS}
    number = 0
    while True:
        number += 1
        brand = "".join(rng.choice(_SYLLABLES) for _ in range(3)).capitalize()
        if brand.lower() in taken:
            continue
        kind = rng.choice(_KINDS)
        model = f"{rng.choice('ABCDEFGHKLMNPRSTVXZ')}{rng.randint(1, 99)}"
        lines = [f"{brand} {model} {kind} - manual", ""]
        for section in range(8):
            lines.append(f"{section + 1}. {rng.choice(_PARTS).capitalize()} care")
            sentences = (_filler_sentence(rng, kind) for _ in range(9))
            lines += [" ".join(sentences), ""]
        yield f"filler-{number:05d}-{brand.lower()}.txt", "\n".join(lines)


def _filler_sentence(rng: random.Random, kind: str) -> str:
    template = rng.choice(_SENTENCES)
    return template.format(
        part=rng.choice(_PARTS),
        kind=kind,
        n=rng.randint(2, 400),
        m=rng.randint(0, 9),
        code=f"{rng.choice('EFWQ')}{rng.randint(10, 99)}",
        pin=f"{rng.randint(0, 9999):04d}",
        years=rng.randint(2, 5),
    )


# How the questions name each manual's product: follow-ups replace it by "it".
PRODUCTS: dict[str, str] = {
    "brevona-x2-manual.pdf": "Brevona X2",
    "skylark-v7-guide.md": "Skylark V7",
    "trelvo-e-city-3.html": "Trelvo E-City 3",
    "greenvault-gc40.txt": "GreenVault GC-40",
    "aquanest-p12.pdf": "Aquanest P12",
    "norvik-ht9.md": "Norvik HT-9",
    "mowbot-lumen-5.html": "Mowbot Lumen 5",
    "quillon-sr2.txt": "Quillon SR-2",
    "ostrava-k900-kiln.pdf": "Ostrava K-900",
    "keyra-l3-smart-lock.md": "Keyra L3",
}


def follow_up(question: Question) -> tuple[str, str]:
    """(earlier turn, follow-up): the product named once, then asked about as "it".

    "What error code does the Brevona X2 show for a clogged filter?" becomes
    "Tell me about the Brevona X2." then "What error code does it show for a
    clogged filter?".
    """
    product = PRODUCTS[question.filename]
    asked = re.sub(rf"(?:the )?{re.escape(product)}", "it", question.text)
    if asked == question.text:
        raise ValueError(f"{question.text!r} does not name {product!r}")
    return f"Tell me about the {product}.", asked
