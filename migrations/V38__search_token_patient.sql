-- Token rows keyed by their resource's Patient (server/src/search/patient_keyed.rs):
-- `patient` is the local Patient that the resource's `patient` search
-- parameter refers to, for the types whose R4 `patient` expression is one
-- element of at most one value, and NULL otherwise. search_token_patient has
-- it after the code, so that "this Patient has an Observation with this code"
-- (`_has:Observation:patient:code=…`) is one index probe. It is an index of
-- its own: putting the Patient into search_token_lookup before res_id would
-- lose that index's id order, which merge joins and paged semi-joins use
-- (Observation?code=…&value-quantity=… went from 9 to 110 ms at a million
-- resources). Equal keys are deduplicated, so it is small (52 MB beside the
-- lookup index's 354 MB for 2.7 million token rows).

ALTER TABLE search_token ADD COLUMN IF NOT EXISTS patient text;

-- The owner of the tables is subject to row-level security (FORCE, V11), so
-- that it would update no row here; it is lifted for this transaction only.
ALTER TABLE search_token NO FORCE ROW LEVEL SECURITY;

UPDATE search_token t SET patient = r.target_id
FROM search_reference r
WHERE r.tenant = t.tenant AND r.res_type = t.res_type AND r.res_id = t.res_id
  AND r.param = 'patient' AND r.target_type = 'Patient' AND r.target_id IS NOT NULL
  AND t.patient IS DISTINCT FROM r.target_id
  AND t.res_type IN ('AllergyIntolerance', 'AppointmentResponse', 'Basic', 'BodyStructure', 'CarePlan', 'CareTeam', 'ChargeItem', 'Claim', 'ClaimResponse', 'ClinicalImpression', 'Communication', 'CommunicationRequest', 'Composition', 'Condition', 'Consent', 'Coverage', 'CoverageEligibilityRequest', 'CoverageEligibilityResponse', 'DetectedIssue', 'Device', 'DeviceRequest', 'DeviceUseStatement', 'DiagnosticReport', 'DocumentManifest', 'DocumentReference', 'Encounter', 'EnrollmentRequest', 'EpisodeOfCare', 'ExplanationOfBenefit', 'FamilyMemberHistory', 'Flag', 'Goal', 'GuidanceResponse', 'ImagingStudy', 'Immunization', 'ImmunizationEvaluation', 'ImmunizationRecommendation', 'Invoice', 'List', 'MeasureReport', 'Media', 'MedicationAdministration', 'MedicationDispense', 'MedicationRequest', 'MedicationStatement', 'MolecularSequence', 'NutritionOrder', 'Observation', 'Procedure', 'QuestionnaireResponse', 'RelatedPerson', 'RequestGroup', 'ResearchSubject', 'RiskAssessment', 'ServiceRequest', 'Specimen', 'SupplyDelivery', 'Task', 'VisionPrescription');

ALTER TABLE search_token FORCE ROW LEVEL SECURITY;

CREATE INDEX IF NOT EXISTS search_token_patient
    ON search_token (tenant, res_type, param, code, system, patient) WHERE patient IS NOT NULL;

ANALYZE search_token;
