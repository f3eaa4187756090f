package model

// Guidance is what a code means and what to do about it. Each provider dialect keeps a
// table of Guidance keyed by its own codes; an empty Class or Verdict leaves that part to
// the HTTP status and the method.
type Guidance struct {
	Class   Class
	Verdict Verdict
	Meaning string
	Action  string
}

// ClassGuidance is the guidance for a class when the provider's code is not in its
// dialect's table, or there is no code.
var ClassGuidance = map[Class]Guidance{
	ClassOK:          {Meaning: "The request succeeded.", Action: "Nothing to do."},
	ClassValidation:  {Meaning: "The request or the document's data is wrong.", Action: "Correct the fields named, then resend."},
	ClassAuth:        {Meaning: "The credentials are missing, wrong, expired or revoked.", Action: "Check the account's credentials, log in again, then repeat."},
	ClassPlan:        {Meaning: "The account's plan or quota does not allow this.", Action: "Ask the account owner to upgrade the plan or wait for the quota to renew."},
	ClassPermission:  {Meaning: "The credentials are valid but not allowed to do this.", Action: "Ask an administrator for the role, scope or enablement needed."},
	ClassCertificate: {Meaning: "The signing certificate is invalid, missing or expired.", Action: "Have the certificate renewed or uploaded, then resend."},
	ClassNotFound:    {Meaning: "The document or resource does not exist, or is hidden.", Action: "Check the id; if it should exist, check the account is active."},
	ClassMethod:      {Meaning: "The endpoint does not accept this method: a client bug.", Action: "Report it; do not repeat the request."},
	ClassConflict:    {Meaning: "The request conflicts with a unique value or the resource's state.", Action: "Inspect the existing resource and change the data before resending."},
	ClassDuplicate:   {Meaning: "The provider or the tax authority already holds this document.", Action: "Load the existing document; never resend the same number."},
	ClassProcessing:  {Meaning: "The document was already sent and is still being processed.", Action: "Query the document's status before any resend."},
	ClassRateLimited: {Meaning: "A rate-limit window is exhausted.", Action: "Wait until the window resets, then repeat."},
	ClassRejected:    {Meaning: "The tax authority rejected the document.", Action: "Read the authority's reason, fix the document, then resend."},
	ClassUpstream:    {Meaning: "The tax authority or a dependency could not be reached.", Action: "Query the document's status, then resend only if it did not land."},
	ClassServer:      {Meaning: "The provider failed unexpectedly.", Action: "Query the document's status before resending a write; reads may be retried."},
	ClassUnavailable: {Meaning: "The provider is in maintenance or a dependency is briefly down.", Action: "Wait and repeat; check a write's status before resending it."},
	ClassUnknown:     {Meaning: "The response fits no known shape.", Action: "Read the raw response; check the document's status before resending."},
}
