"""End-to-end pipelines that chain the stages (the RV-from-MRI study, the diastolic echo study)."""
