from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from peerlift.privacy.deletion import DeletionPlan


class StudyRuleOut(BaseModel):
    study_id: int
    title: str
    rule: str = Field(description="keep_pseudonymised or delete")
    text: str
    consent_version: str | None = Field(description="The consent document version the person signed, if any")
    enrolled: bool


class DeletionPlanOut(BaseModel):
    """What deleting the account does, before it is confirmed."""

    user_id: int
    studies: list[StudyRuleOut]
    outside_studies_rule: str = Field(description="PEERLIFT_DELETION_WRITING: delete or keep_pseudonymised")
    outside_studies_text: str
    person_records_kept: bool = Field(description="Tracking and questionnaires stay (a study keeps them)")
    direct_messages_kept: bool
    unresolved_escalations: int = Field(description="Crisis escalations about the person still open: kept")
    counts: dict[str, int]

    @classmethod
    def of(cls, plan: DeletionPlan) -> DeletionPlanOut:
        return cls(user_id=plan.user_id,
                   studies=[StudyRuleOut(study_id=s.study_id, title=s.title, rule=s.rule, text=s.text,
                                         consent_version=s.document_version, enrolled=s.enrolled)
                            for s in plan.studies],
                   outside_studies_rule=plan.outside_rule, outside_studies_text=plan.outside_text,
                   person_records_kept=plan.keeps_person_data, direct_messages_kept=plan.messages_kept,
                   unresolved_escalations=plan.unresolved_escalations, counts=plan.counts)


class DeletionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(max_length=256, description="Your own password, typed again")
    confirm: bool = Field(False, description="True: you have read what happens to the data")


class AdminDeletionIn(DeletionIn):
    reason: str = Field(max_length=1000, description="Whose request and how it came, for the audit trail "
                                                     "(no names or addresses)")


class DeletionOut(BaseModel):
    user_id: int
    deleted_at: dt.datetime
    removed: dict[str, int]
