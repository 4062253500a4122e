"""Describe metadata of the sandbox org: standard fields the hub uses plus the brief's custom ones."""

from __future__ import annotations

from typing import Any


def F(name: str, type_: str = "string", **kw: Any) -> dict[str, Any]:
    custom = name.endswith("__c")
    field = {
        "name": name,
        "label": kw.pop("label", name.replace("__c", "").replace("_", " ")),
        "type": type_,
        "length": kw.pop("length", 255 if type_ in ("string", "email", "phone", "url", "picklist") else 0),
        "nillable": True,
        "createable": True,
        "updateable": True,
        "defaultedOnCreate": False,
        "unique": False,
        "externalId": False,
        "custom": custom,
        "calculated": False,
        "referenceTo": kw.pop("referenceTo", []),
        "restrictedPicklist": False,
        "picklistValues": [],
    }
    values = kw.pop("values", None)
    if values:
        field["picklistValues"] = [
            {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v} for v in values
        ]
    field.update(kw)
    return field


def system(name: str, type_: str, **kw: Any) -> dict[str, Any]:
    return F(name, type_, createable=False, updateable=False, nillable=False, defaultedOnCreate=True, **kw)


COMMON = [
    system("Id", "id", length=18),
    system("IsDeleted", "boolean"),
    system("CreatedDate", "datetime"),
    system("LastModifiedDate", "datetime"),
    system("SystemModstamp", "datetime"),
]

OBJECTS: dict[str, dict[str, Any]] = {
    "Lead": {
        "label": "Lead",
        "keyPrefix": "00Q",
        "required": ("LastName", "Company"),
        "fields": [
            F("FirstName", length=40),
            F("LastName", length=80, nillable=False),
            F("Company", nillable=False),
            F("Email", "email", length=80),
            F("Phone", "phone", length=40),
            F("Title", length=128),
            F("Website", "url"),
            F("City", length=40),
            F("Country", length=80),
            F(
                "Status",
                "picklist",
                values=[
                    "Open - Not Contacted",
                    "Working - Contacted",
                    "Closed - Converted",
                    "Closed - Not Converted",
                ],
                defaultedOnCreate=True,
                nillable=False,
            ),
            F("LeadSource", "picklist", values=["Web", "Phone Inquiry", "Partner Referral", "Other"]),
            F("Industry", "picklist", values=["Agriculture", "Banking", "Education", "Technology"]),
            F("Address", "address", createable=False, updateable=False),
            F("NumberOfEmployees", "int"),
            F("AnnualRevenue", "currency"),
            F(
                "IsConverted",
                "boolean",
                createable=False,
                updateable=False,
                defaultedOnCreate=True,
                nillable=False,
            ),
            F("ConvertedContactId", "reference", createable=False, updateable=False, referenceTo=["Contact"]),
            F("ConvertedAccountId", "reference", createable=False, updateable=False, referenceTo=["Account"]),
            F("HasOptedOutOfEmail", "boolean", defaultedOnCreate=True, nillable=False),
            F("Leadbridge_URL__c", "url", label="Leadbridge URL"),
            F("Score__c", label="Score"),
            F("Status__c", label="Marketing status"),
            F("Leadbridge_Id__c", label="Leadbridge Id", externalId=True, unique=True),
            F("Interests__c", "multipicklist", label="Interests", values=["CRM", "Email", "Events"]),
            F("Last_Form_Date__c", "date", label="Last form date"),
        ],
    },
    "Contact": {
        "label": "Contact",
        "keyPrefix": "003",
        "required": ("LastName",),
        "fields": [
            F("FirstName", length=40),
            F("LastName", length=80, nillable=False),
            F("Email", "email", length=80),
            F("Phone", "phone", length=40),
            F("Title", length=128),
            F("AccountId", "reference", referenceTo=["Account"]),
            F("Department", length=80),
            F("MailingAddress", "address", createable=False, updateable=False),
            F("HasOptedOutOfEmail", "boolean", defaultedOnCreate=True, nillable=False),
            F("Sync_To_Leadbridge__c", "picklist", label="Sync to leadbridge", values=["Yes", "No"]),
        ],
    },
    "Account": {
        "label": "Account",
        "keyPrefix": "001",
        "required": ("Name",),
        "fields": [
            F("Name", nillable=False),
            F("Website", "url"),
            F("Phone", "phone", length=40),
            F("Industry", "picklist", values=["Agriculture", "Banking", "Education", "Technology"]),
            F("BillingCity", length=40),
            F("NumberOfEmployees", "int"),
        ],
    },
    "Task": {
        "label": "Task",
        "keyPrefix": "00T",
        "required": ("Subject",),
        "fields": [
            F("Subject"),
            F("WhoId", "reference", referenceTo=["Contact", "Lead"]),
            F("WhatId", "reference", referenceTo=["Account", "Campaign"]),
            F("ActivityDate", "date"),
            F("Description", "textarea", length=32000),
            F(
                "Status",
                "picklist",
                values=["Not Started", "In Progress", "Completed"],
                defaultedOnCreate=True,
                nillable=False,
                restrictedPicklist=True,
            ),
            F(
                "Priority",
                "picklist",
                values=["High", "Normal", "Low"],
                defaultedOnCreate=True,
                nillable=False,
            ),
            F("TaskSubtype", "picklist", values=["Task", "Email", "Call"]),
        ],
    },
    "Campaign": {
        "label": "Campaign",
        "keyPrefix": "701",
        "required": ("Name",),
        "fields": [
            F("Name", length=80, nillable=False),
            F("IsActive", "boolean", defaultedOnCreate=True, nillable=False),
            F("Status", "picklist", values=["Planned", "In Progress", "Completed"]),
            F("NumberOfLeads", "int", createable=False, updateable=False, calculated=True),
            F("NumberOfContacts", "int", createable=False, updateable=False, calculated=True),
        ],
    },
    "CampaignMember": {
        "label": "Campaign Member",
        "keyPrefix": "00v",
        "required": ("CampaignId",),
        "fields": [
            F("CampaignId", "reference", referenceTo=["Campaign"], nillable=False, updateable=False),
            F("LeadId", "reference", referenceTo=["Lead"], updateable=False),
            F("ContactId", "reference", referenceTo=["Contact"], updateable=False),
            F("Status", "picklist", values=["Sent", "Responded"], defaultedOnCreate=True),
            F(
                "HasResponded",
                "boolean",
                createable=False,
                updateable=False,
                defaultedOnCreate=True,
                nillable=False,
            ),
        ],
    },
}

RELATIONSHIPS = {
    ("Contact", "Account"): "AccountId",
    ("CampaignMember", "Lead"): "LeadId",
    ("CampaignMember", "Contact"): "ContactId",
    ("Task", "Who"): "WhoId",
    ("Task", "What"): "WhatId",
    ("CampaignMember", "Campaign"): "CampaignId",
}


def fields_of(sobject: str) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = OBJECTS[sobject]["fields"]
    return COMMON + fields
