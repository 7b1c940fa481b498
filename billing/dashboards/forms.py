"""The dashboard's filters: a range of days (the last 30 by default) and a team among those visible."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

from django import forms
from django.core.validators import MaxValueValidator
from unfold.widgets import DATETIME_CLASSES, SELECT_CLASSES

from billing.selectors.rollups import LAST_DAY
from llm_gateway.models import Team

DEFAULT_DAYS = 30
# Rollups hold a row per day and dimension: a year is as far as one page should add up.
MAX_DAYS = 366


class SpendFilterForm(forms.Form):
    start = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date", "class": " ".join(DATETIME_CLASSES)}),
        validators=[MaxValueValidator(LAST_DAY)],
    )
    end = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date", "class": " ".join(DATETIME_CLASSES)}),
        validators=[MaxValueValidator(LAST_DAY)],
    )
    team = forms.ChoiceField(required=False, widget=forms.Select(attrs={"class": " ".join(SELECT_CLASSES)}))

    def __init__(self, query: Mapping[str, str], *, teams: list[Team], sees_all: bool, today: date) -> None:
        """Bind ``query`` (the page's GET parameters) over the defaults.

        The team choices are the teams the user may see: a crafted ``team`` outside them is an
        invalid choice. Finance may also choose every team; a team admin of one team has it chosen.
        """
        choices = [(str(team.team_id), team.team_alias) for team in teams]
        if sees_all or len(choices) != 1:
            choices.insert(0, ("", "All teams" if sees_all else "All my teams"))
        defaults = {
            "start": (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
            "end": today.isoformat(),
            "team": choices[0][0],
        }
        super().__init__({**defaults, **{name: query[name] for name in defaults if name in query}})
        self.fields["team"].choices = choices
        self.fields["team"].required = choices[0][0] != ""

    def clean(self) -> dict:
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            self.add_error("end", "The end comes before the start.")
        elif start and end and (end - start).days + 1 > MAX_DAYS:
            self.add_error("end", f"Choose at most {MAX_DAYS} days.")
        return cleaned

    def team_ids(self, visible: frozenset[str] | None) -> frozenset[str] | None:
        """Return the teams to add up: the chosen one, else every visible team (None: all teams)."""
        team = self.cleaned_data.get("team")
        return frozenset({team}) if team else visible
