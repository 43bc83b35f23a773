//! Parsed identifiers: resource ids (`id` datatype) and the R4 resource types.
//! Raw strings from a URL become one of these at the edge.

use std::fmt;

/// The 146 concrete resource types of FHIR R4 4.0.1, sorted.
#[rustfmt::skip]
pub const RESOURCE_TYPES: [&str; 146] = [
    "Account", "ActivityDefinition", "AdverseEvent", "AllergyIntolerance", "Appointment",
    "AppointmentResponse", "AuditEvent", "Basic", "Binary", "BiologicallyDerivedProduct",
    "BodyStructure", "Bundle", "CapabilityStatement", "CarePlan", "CareTeam",
    "CatalogEntry", "ChargeItem", "ChargeItemDefinition", "Claim", "ClaimResponse",
    "ClinicalImpression", "CodeSystem", "Communication", "CommunicationRequest", "CompartmentDefinition",
    "Composition", "ConceptMap", "Condition", "Consent", "Contract",
    "Coverage", "CoverageEligibilityRequest", "CoverageEligibilityResponse", "DetectedIssue", "Device",
    "DeviceDefinition", "DeviceMetric", "DeviceRequest", "DeviceUseStatement", "DiagnosticReport",
    "DocumentManifest", "DocumentReference", "EffectEvidenceSynthesis", "Encounter", "Endpoint",
    "EnrollmentRequest", "EnrollmentResponse", "EpisodeOfCare", "EventDefinition", "Evidence",
    "EvidenceVariable", "ExampleScenario", "ExplanationOfBenefit", "FamilyMemberHistory", "Flag",
    "Goal", "GraphDefinition", "Group", "GuidanceResponse", "HealthcareService",
    "ImagingStudy", "Immunization", "ImmunizationEvaluation", "ImmunizationRecommendation", "ImplementationGuide",
    "InsurancePlan", "Invoice", "Library", "Linkage", "List",
    "Location", "Measure", "MeasureReport", "Media", "Medication",
    "MedicationAdministration", "MedicationDispense", "MedicationKnowledge", "MedicationRequest", "MedicationStatement",
    "MedicinalProduct", "MedicinalProductAuthorization", "MedicinalProductContraindication", "MedicinalProductIndication", "MedicinalProductIngredient",
    "MedicinalProductInteraction", "MedicinalProductManufactured", "MedicinalProductPackaged", "MedicinalProductPharmaceutical", "MedicinalProductUndesirableEffect",
    "MessageDefinition", "MessageHeader", "MolecularSequence", "NamingSystem", "NutritionOrder",
    "Observation", "ObservationDefinition", "OperationDefinition", "OperationOutcome", "Organization",
    "OrganizationAffiliation", "Parameters", "Patient", "PaymentNotice", "PaymentReconciliation",
    "Person", "PlanDefinition", "Practitioner", "PractitionerRole", "Procedure",
    "Provenance", "Questionnaire", "QuestionnaireResponse", "RelatedPerson", "RequestGroup",
    "ResearchDefinition", "ResearchElementDefinition", "ResearchStudy", "ResearchSubject", "RiskAssessment",
    "RiskEvidenceSynthesis", "Schedule", "SearchParameter", "ServiceRequest", "Slot",
    "Specimen", "SpecimenDefinition", "StructureDefinition", "StructureMap", "Subscription",
    "Substance", "SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein", "SubstanceReferenceInformation",
    "SubstanceSourceMaterial", "SubstanceSpecification", "SupplyDelivery", "SupplyRequest", "Task",
    "TerminologyCapabilities", "TestReport", "TestScript", "ValueSet", "VerificationResult",
    "VisionPrescription",
];

/// A resource type known to R4. Cheap to copy: it points into [`RESOURCE_TYPES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceType(&'static str);

impl ResourceType {
    /// Returns the type named exactly `name` (case-sensitive, per the spec).
    pub fn parse(name: &str) -> Option<ResourceType> {
        RESOURCE_TYPES
            .binary_search(&name)
            .ok()
            .map(|i| ResourceType(RESOURCE_TYPES[i]))
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }

    pub fn all() -> impl Iterator<Item = ResourceType> {
        RESOURCE_TYPES.iter().map(|name| ResourceType(name))
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A logical id: `[A-Za-z0-9\-\.]{1,64}` (datatypes.html#id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

impl Id {
    pub fn parse(raw: &str) -> Option<Id> {
        is_valid_id(raw).then(|| Id(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn is_valid_id(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_types_are_sorted_for_binary_search() {
        assert!(RESOURCE_TYPES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn parses_known_types_only() {
        assert_eq!(
            ResourceType::parse("Patient").map(|t| t.as_str()),
            Some("Patient")
        );
        assert!(ResourceType::parse("patient").is_none());
        assert!(ResourceType::parse("Resource").is_none());
    }

    #[test]
    fn id_rules() {
        for ok in ["a", "A-1.b", &"x".repeat(64)] {
            assert!(Id::parse(ok).is_some(), "{ok}");
        }
        for bad in ["", "a b", "a/b", "ä", &"x".repeat(65)] {
            assert!(Id::parse(bad).is_none(), "{bad}");
        }
    }
}
