package pipeline_test

import (
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/pipeline/pipelinetest"
)

// TestEvaluationAttacksWithoutSandbox plays every attack on the channels
// back from an evaluation with -sandbox none, where python can write the
// evaluation's directory: the worker must read nothing from it.
func TestEvaluationAttacksWithoutSandbox(t *testing.T) {
	pipelinetest.Play(t, &pipeline.Evaluator{Timeout: 3 * time.Second})
}
