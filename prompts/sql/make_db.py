"""Build the sql pack's database: a small clinical-trials registry, the same every time.

    python prompts/sql/make_db.py [OUT]      # default: clinical.db next to this file

Seeded (``random.Random(7)``), standard library only. Tables:

- ``sponsors(sponsor_id, name, kind)`` - kind is 'industry' or 'academic'
- ``trials(trial_id, code, title, condition, phase, sponsor_id, status, start_date, end_date,
  target_enrollment)`` - ``end_date`` is NULL while a trial runs; ``phase`` 1-4
- ``sites(site_id, name, city, country, opened_date)``
- ``trial_sites(trial_id, site_id)`` - where each trial recruits
- ``patients(patient_id, trial_id, site_id, sex, birth_year, enrolled_date, arm,
  withdrawn_date)`` - ``arm`` 'treatment' or 'placebo'; ``withdrawn_date`` NULL unless withdrawn
- ``adverse_events(event_id, patient_id, event_date, term, grade, serious, outcome)`` -
  ``grade`` 1-5, ``serious`` 0/1, ``outcome`` NULL while unresolved

Dates are ISO text (YYYY-MM-DD), so SQLite's date functions and string comparison both work.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import sys
from pathlib import Path

SCHEMA = """
CREATE TABLE sponsors (
    sponsor_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind TEXT NOT NULL);
CREATE TABLE trials (
    trial_id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, title TEXT NOT NULL,
    condition TEXT NOT NULL, phase INTEGER NOT NULL, sponsor_id INTEGER NOT NULL
    REFERENCES sponsors, status TEXT NOT NULL, start_date TEXT NOT NULL, end_date TEXT,
    target_enrollment INTEGER NOT NULL);
CREATE TABLE sites (
    site_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, city TEXT NOT NULL,
    country TEXT NOT NULL, opened_date TEXT NOT NULL);
CREATE TABLE trial_sites (
    trial_id INTEGER NOT NULL REFERENCES trials, site_id INTEGER NOT NULL REFERENCES sites,
    PRIMARY KEY (trial_id, site_id));
CREATE TABLE patients (
    patient_id INTEGER PRIMARY KEY, trial_id INTEGER NOT NULL REFERENCES trials,
    site_id INTEGER NOT NULL REFERENCES sites, sex TEXT NOT NULL, birth_year INTEGER NOT NULL,
    enrolled_date TEXT NOT NULL, arm TEXT NOT NULL, withdrawn_date TEXT);
CREATE TABLE adverse_events (
    event_id INTEGER PRIMARY KEY, patient_id INTEGER NOT NULL REFERENCES patients,
    event_date TEXT NOT NULL, term TEXT NOT NULL, grade INTEGER NOT NULL,
    serious INTEGER NOT NULL, outcome TEXT);
"""

SPONSORS = [
    ("Northwind Pharma", "industry"),
    ("Helix Biotherapeutics", "industry"),
    ("Aurora Medical", "industry"),
    ("Lakeside University Hospital", "academic"),
    ("Institute for Cardiac Research", "academic"),
    ("Meridian Oncology Group", "industry"),
]

# code, title, condition, phase, sponsor index, status
TRIALS = [
    ("NW-101", "Low-dose NW-7 in early hypertension", "hypertension", 2, 0, "completed"),
    (
        "NW-204",
        "NW-7 versus standard care in resistant hypertension",
        "hypertension",
        3,
        0,
        "recruiting",
    ),
    ("HX-310", "HX-2 antibody in moderate asthma", "asthma", 2, 1, "completed"),
    ("HX-411", "HX-2 long-term safety extension", "asthma", 4, 1, "active"),
    ("AU-120", "AU-55 for type 2 diabetes", "type 2 diabetes", 3, 2, "recruiting"),
    ("AU-121", "AU-55 dose finding", "type 2 diabetes", 1, 2, "completed"),
    ("LU-015", "Exercise and metformin in prediabetes", "type 2 diabetes", 2, 3, "terminated"),
    ("LU-032", "Vitamin D in seasonal depression", "depression", 3, 3, "active"),
    ("IC-007", "Early statins after heart attack", "coronary artery disease", 4, 4, "completed"),
    ("IC-019", "Colchicine after stent placement", "coronary artery disease", 3, 4, "recruiting"),
    ("MO-501", "MO-9 in advanced melanoma", "melanoma", 1, 5, "active"),
    ("MO-502", "MO-9 plus radiotherapy in melanoma", "melanoma", 2, 5, "terminated"),
]

SITES = [
    ("Riverside Clinical Centre", "Leeds", "United Kingdom"),
    ("St. Anne's Research Unit", "Dublin", "Ireland"),
    ("Hopital Saint-Louis Trials Unit", "Lyon", "France"),
    ("Charite Studienzentrum", "Berlin", "Germany"),
    ("Klinikum Nord Research", "Hamburg", "Germany"),
    ("Policlinico Ricerca", "Milan", "Italy"),
    ("Hospital del Mar Ensayos", "Barcelona", "Spain"),
    ("Karolinska Trial Site", "Stockholm", "Sweden"),
    ("Lakeside University Clinic", "Boston", "United States"),
    ("Pacific Research Hospital", "Seattle", "United States"),
    ("Great Lakes Medical Trials", "Chicago", "United States"),
    ("Maple Clinical Research", "Toronto", "Canada"),
    ("Harbour Health Trials", "Sydney", "Australia"),
    ("Southern Cross Research", "Melbourne", "Australia"),
]

TERMS = {
    "headache": (1, 2),
    "nausea": (1, 3),
    "fatigue": (1, 2),
    "dizziness": (1, 3),
    "rash": (1, 3),
    "elevated liver enzymes": (2, 4),
    "hypotension": (2, 4),
    "pneumonia": (3, 5),
    "myocardial infarction": (3, 5),
    "neutropenia": (2, 4),
}
OUTCOMES = ["recovered", "recovering", "recovered with sequelae", "fatal"]


def iso(day: dt.date) -> str:
    return day.isoformat()


def build(out: Path) -> Path:
    rng = random.Random(7)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    db = sqlite3.connect(partial)
    db.executescript(SCHEMA)
    db.executemany(
        "INSERT INTO sponsors VALUES (?, ?, ?)",
        [(i + 1, name, kind) for i, (name, kind) in enumerate(SPONSORS)],
    )
    for i, (name, city, country) in enumerate(SITES):
        opened = dt.date(2012, 1, 1) + dt.timedelta(days=rng.randrange(0, 9 * 365))
        db.execute(
            "INSERT INTO sites VALUES (?, ?, ?, ?, ?)", (i + 1, name, city, country, iso(opened))
        )
    today = dt.date(2025, 6, 30)  # the registry's snapshot date
    patient_id = event_id = 0
    for t, (code, title, condition, phase, sponsor, status) in enumerate(TRIALS):
        trial_id = t + 1
        start = dt.date(2017, 1, 1) + dt.timedelta(days=rng.randrange(0, 6 * 365))
        end = None
        if status in ("completed", "terminated"):
            end = min(start + dt.timedelta(days=rng.randrange(300, 1100)), today)
        target = rng.choice([20, 30, 40, 60, 80])
        db.execute(
            "INSERT INTO trials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                trial_id,
                code,
                title,
                condition,
                phase,
                sponsor + 1,
                status,
                iso(start),
                None if end is None else iso(end),
                target,
            ),
        )
        sites = sorted(rng.sample(range(1, len(SITES) + 1), rng.randint(2, 5)))
        db.executemany("INSERT INTO trial_sites VALUES (?, ?)", [(trial_id, s) for s in sites])
        # Terminated trials stopped short of their target; others land near it.
        enrolled = round(
            target * (rng.uniform(0.3, 0.6) if status == "terminated" else rng.uniform(0.7, 1.05))
        )
        last_day = end or today
        for _ in range(enrolled):
            patient_id += 1
            enrolled_on = start + dt.timedelta(
                days=rng.randrange(0, max(1, (last_day - start).days - 60))
            )
            withdrawn = None
            if rng.random() < 0.12:
                withdrawn = enrolled_on + dt.timedelta(days=rng.randrange(7, 200))
                withdrawn = min(withdrawn, last_day)
            db.execute(
                "INSERT INTO patients VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    patient_id,
                    trial_id,
                    rng.choice(sites),
                    rng.choice("FM"),
                    rng.randint(1940, 2003),
                    iso(enrolled_on),
                    rng.choice(["treatment", "placebo"]),
                    None if withdrawn is None else iso(withdrawn),
                ),
            )
            events = rng.choices([0, 1, 2, 3], weights=[5, 3, 1.5, 0.5])[0]
            for _ in range(events):
                event_id += 1
                term = rng.choice(sorted(TERMS))
                low, high = TERMS[term]
                grade = rng.randint(low, high)
                on = enrolled_on + dt.timedelta(days=rng.randrange(1, 300))
                on = min(on, last_day)
                outcome = (
                    None
                    if rng.random() < 0.2
                    else ("fatal" if grade == 5 else rng.choice(OUTCOMES[:3]))
                )
                db.execute(
                    "INSERT INTO adverse_events VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (event_id, patient_id, iso(on), term, grade, int(grade >= 3), outcome),
                )
    db.commit()
    db.execute("VACUUM")
    db.close()
    partial.replace(out)
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("clinical.db")
    print(build(target))
