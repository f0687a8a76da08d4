from django.apps import AppConfig


class MedicinesConfig(AppConfig):
    name = "medicines"
    verbose_name = "Medicines catalogue (dm+d)"
