package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/facecloud/facecloud/stack/rehearsal"
)

// cloudWatchMetrics are the metrics the dashboard and alarms may name, as
// AWS documents them (CloudWatch metrics for Application Load Balancers,
// Amazon SQS, Amazon EC2 Auto Scaling group metrics): each metric with the
// dimension sets it is published under, names sorted.
var cloudWatchMetrics = map[string]map[string][][]string{
	nsELB: {
		"RequestCount":              {{"LoadBalancer"}, {"LoadBalancer", "TargetGroup"}},
		"TargetResponseTime":        {{"LoadBalancer"}, {"LoadBalancer", "TargetGroup"}},
		"HTTPCode_Target_5XX_Count": {{"LoadBalancer"}, {"LoadBalancer", "TargetGroup"}},
		"HTTPCode_ELB_5XX_Count":    {{"LoadBalancer"}},
		"HealthyHostCount":          {{"LoadBalancer", "TargetGroup"}},
		"UnHealthyHostCount":        {{"LoadBalancer", "TargetGroup"}},
	},
	nsSQS: {
		"ApproximateNumberOfMessagesVisible":    {{"QueueName"}},
		"ApproximateNumberOfMessagesNotVisible": {{"QueueName"}},
		"ApproximateAgeOfOldestMessage":         {{"QueueName"}},
	},
	nsASG: {
		"GroupDesiredCapacity":      {{"AutoScalingGroupName"}},
		"GroupInServiceInstances":   {{"AutoScalingGroupName"}},
		"GroupPendingInstances":     {{"AutoScalingGroupName"}},
		"GroupTerminatingInstances": {{"AutoScalingGroupName"}},
		"GroupTotalInstances":       {{"AutoScalingGroupName"}},
		"GroupMinSize":              {{"AutoScalingGroupName"}},
		"GroupMaxSize":              {{"AutoScalingGroupName"}},
	},
}

var statRE = regexp.MustCompile(`^(Sum|Average|Minimum|Maximum|SampleCount|p(50|90|95|99|99\.9))$`)

// metricExists reports why namespace/name with dims (and stat) is not a
// metric the stack's resources publish, or "" when it is: a documented
// metric under its dimension set, each dimension naming a resource the
// program declared, group metrics only when the group collects them.
func metricExists(m *mockCloud, namespace, name, stat string, dims map[string]string) string {
	sets, ok := cloudWatchMetrics[namespace][name]
	if !ok {
		return fmt.Sprintf("%s %s is not a metric of that namespace", namespace, name)
	}
	var keys []string
	for k := range dims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !slices.ContainsFunc(sets, func(s []string) bool { return slices.Equal(s, keys) }) {
		return fmt.Sprintf("%s %s is not published with dimensions %v (only %v)", namespace, name, keys, sets)
	}
	if !statRE.MatchString(stat) {
		return fmt.Sprintf("%s %s: statistic %q", namespace, name, stat)
	}
	for k, v := range dims {
		var found bool
		switch k {
		case "LoadBalancer":
			for _, r := range m.of("aws:lb/loadBalancer:LoadBalancer") {
				found = found || v == rehearsal.LoadBalancerSuffix(getString(r.Inputs, "name"))
			}
		case "TargetGroup":
			for _, r := range m.of("aws:lb/targetGroup:TargetGroup") {
				found = found || v == rehearsal.TargetGroupSuffix(getString(r.Inputs, "name"))
			}
		case "QueueName":
			for _, r := range m.of("aws:sqs/queue:Queue") {
				found = found || v == getString(r.Inputs, "name")
			}
		case "AutoScalingGroupName":
			for _, r := range m.of("aws:autoscaling/group:Group") {
				if v != getString(r.Inputs, "name") {
					continue
				}
				found = true
				if !slices.Contains(r.Inputs["enabledMetrics"].([]any), any(name)) {
					return fmt.Sprintf("%s does not collect %s: CloudWatch would have no data", v, name)
				}
			}
		}
		if !found {
			return fmt.Sprintf("%s %s: dimension %s=%s names no resource of the stack", namespace, name, k, v)
		}
	}
	return ""
}

// TestDashboard: every widget's metric exists (a documented metric under
// the dimensions it has, naming the stack's own load balancer, target
// group, queues and groups), and the dashboard shows request rate,
// latency, queue depth and age, dead letters, fleet size, instance health
// and 5xx answers.
func TestDashboard(t *testing.T) {
	for name, cfg := range map[string]map[string]string{
		"default":       {},
		"course preset": {"namingPreset": "course", "namePrefix": "1225754101", "webHosts": "1", "webPort": "8000"},
		"https":         {"domain": "api.example.com", "hostedZone": "example.com"},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := runStack(t, cfg, inputs{build: fakeBuild("v1"), models: fakeModels(t)})
			if err != nil {
				t.Fatal(err)
			}
			d := m.one(t, "aws:cloudwatch/dashboard:Dashboard", "service")
			var body struct {
				Widgets []struct {
					Type       string
					Properties struct {
						Title   string
						Region  string
						Metrics [][]any
						Alarms  []string
					}
				}
			}
			if err := json.Unmarshal([]byte(getString(d.Inputs, "dashboardBody")), &body); err != nil {
				t.Fatalf("dashboard body: %v", err)
			}
			shown := map[string]bool{}
			alarmWidgets := 0
			for _, w := range body.Widgets {
				if w.Type == "alarm" {
					alarmWidgets++
					if len(w.Properties.Alarms) != len(m.of("aws:cloudwatch/metricAlarm:MetricAlarm")) {
						t.Errorf("alarm widget shows %d alarms of %d", len(w.Properties.Alarms), len(m.of("aws:cloudwatch/metricAlarm:MetricAlarm")))
					}
					continue
				}
				if w.Properties.Region != mockRegion || len(w.Properties.Metrics) == 0 {
					t.Errorf("widget %q: region %q, %d metrics", w.Properties.Title, w.Properties.Region, len(w.Properties.Metrics))
				}
				for _, row := range w.Properties.Metrics {
					if len(row) < 3 || len(row)%2 != 1 {
						t.Errorf("widget %q: metric row %v is not namespace, name, dimension pairs, options", w.Properties.Title, row)
						continue
					}
					ns, metric := row[0].(string), row[1].(string)
					dims := map[string]string{}
					for i := 2; i+1 < len(row); i += 2 {
						dims[row[i].(string)] = row[i+1].(string)
					}
					stat := getString(row[len(row)-1], "stat")
					if why := metricExists(m, ns, metric, stat, dims); why != "" {
						t.Errorf("widget %q: %s", w.Properties.Title, why)
					}
					shown[metric] = true
				}
			}
			for what, metric := range map[string]string{
				"request rate": "RequestCount", "latency": "TargetResponseTime", "queue depth": "ApproximateNumberOfMessagesVisible",
				"queue age": "ApproximateAgeOfOldestMessage", "fleet size": "GroupInServiceInstances", "instance health": "UnHealthyHostCount",
				"5xx": "HTTPCode_Target_5XX_Count", "dead letters": "ApproximateNumberOfMessagesVisible",
			} {
				if !shown[metric] {
					t.Errorf("the dashboard does not show %s (%s)", what, metric)
				}
			}
			if alarmWidgets != 1 {
				t.Errorf("%d alarm widgets, want 1", alarmWidgets)
			}
		})
	}
}

// TestAlarms: each alarm watches the metric it says, against its
// threshold from the config, and notifies the alarm topic (which mails
// alarmEmail when set); each metric exists as TestDashboard checks.
func TestAlarms(t *testing.T) {
	cfg := map[string]string{"maxWorkers": "12", "alarmQueueAge": "3m", "alarm5xxPercent": "7", "alarmEmail": "ops@example.com"}
	m, err := runStack(t, cfg, inputs{build: fakeBuild("v1"), models: fakeModels(t)})
	if err != nil {
		t.Fatal(err)
	}
	names := testNames(t, "default", "facecloud-test")
	topic := "arn:aws:sns:" + mockRegion + ":" + mockAccount + ":facecloud-test-alarms"
	sub := m.one(t, "aws:sns/topicSubscription:TopicSubscription", "alarms-email")
	if getString(sub.Inputs, "topic") != topic || getString(sub.Inputs, "protocol") != "email" || getString(sub.Inputs, "endpoint") != "ops@example.com" {
		t.Errorf("subscription %v, want ops@example.com by e-mail to %s", sub.Inputs, topic)
	}
	lb := rehearsal.LoadBalancerSuffix(names.LoadBalancer)
	tg := rehearsal.TargetGroupSuffix(names.TargetGroup)
	type want struct {
		namespace, metric, stat string
		dims                    map[string]string
		comparison              string
		threshold               float64
		// window is period × evaluations, in seconds.
		window int
	}
	tests := map[string]want{
		"dead-letters":       {nsSQS, "ApproximateNumberOfMessagesVisible", "Maximum", map[string]string{"QueueName": names.DeadLetterQueue}, "GreaterThanThreshold", 0, 60},
		"queue-age":          {nsSQS, "ApproximateAgeOfOldestMessage", "Maximum", map[string]string{"QueueName": names.RequestQueue}, "GreaterThanThreshold", 180, 60},
		"fleet-at-max":       {nsASG, "GroupDesiredCapacity", "Minimum", map[string]string{"AutoScalingGroupName": names.WorkerGroup}, "GreaterThanOrEqualToThreshold", 12, 600},
		"unhealthy-web-host": {nsELB, "UnHealthyHostCount", "Maximum", map[string]string{"TargetGroup": tg, "LoadBalancer": lb}, "GreaterThanThreshold", 0, 120},
		"5xx-rate":           {"", "", "", nil, "GreaterThanThreshold", 7, 300},
	}
	alarms := m.of("aws:cloudwatch/metricAlarm:MetricAlarm")
	if len(alarms) != len(tests) {
		t.Errorf("%d alarms, want %d", len(alarms), len(tests))
	}
	for name, w := range tests {
		t.Run(name, func(t *testing.T) {
			a := m.one(t, "aws:cloudwatch/metricAlarm:MetricAlarm", "alarm-"+name)
			if getString(a.Inputs, "name") != "facecloud-test-"+name {
				t.Errorf("alarm named %q", getString(a.Inputs, "name"))
			}
			for _, k := range []string{"alarmActions", "okActions"} {
				if acts, _ := a.Inputs[k].([]any); len(acts) != 1 || acts[0] != topic {
					t.Errorf("%s %v, want the alarm topic", k, a.Inputs[k])
				}
			}
			if getString(a.Inputs, "comparisonOperator") != w.comparison || getNumber(a.Inputs, "threshold") != w.threshold {
				t.Errorf("%s %v, want %s %v", getString(a.Inputs, "comparisonOperator"), getNumber(a.Inputs, "threshold"), w.comparison, w.threshold)
			}
			evals := int(getNumber(a.Inputs, "evaluationPeriods"))
			if int(getNumber(a.Inputs, "datapointsToAlarm")) != evals {
				t.Errorf("%d of %d periods: every period must breach", int(getNumber(a.Inputs, "datapointsToAlarm")), evals)
			}
			if getString(a.Inputs, "treatMissingData") != "notBreaching" {
				t.Errorf("missing data %q: an idle stack publishes no data and must not alarm", getString(a.Inputs, "treatMissingData"))
			}
			if w.metric == "" {
				queries, _ := a.Inputs["metricQueries"].([]any)
				byID := map[string]any{}
				for _, q := range queries {
					byID[getString(q, "id")] = q
				}
				expr := getString(byID["rate"], "expression")
				if !strings.Contains(expr, "100 *") || get(byID["rate"], "returnData") != true {
					t.Fatalf("5xx alarm expression %q", expr)
				}
				for id, metric := range map[string]string{"target5xx": "HTTPCode_Target_5XX_Count", "lb5xx": "HTTPCode_ELB_5XX_Count", "requests": "RequestCount"} {
					q := get(byID[id], "metric")
					if !strings.Contains(expr, id) || getString(q, "metricName") != metric || getString(q, "stat") != "Sum" || int(getNumber(q, "period")) != w.window {
						t.Errorf("query %s = %v, want Sum of %s over %d s in the expression", id, q, metric, w.window)
					}
					dims := map[string]string{}
					for k, v := range get(q, "dimensions").(map[string]any) {
						dims[k] = v.(string)
					}
					if dims["LoadBalancer"] != lb {
						t.Errorf("query %s on %v, want the load balancer %s", id, dims, lb)
					}
					if why := metricExists(m, getString(q, "namespace"), metric, "Sum", dims); why != "" {
						t.Error(why)
					}
				}
				return
			}
			dims := map[string]string{}
			for k, v := range get(a.Inputs, "dimensions").(map[string]any) {
				dims[k] = v.(string)
			}
			if getString(a.Inputs, "namespace") != w.namespace || getString(a.Inputs, "metricName") != w.metric || getString(a.Inputs, "statistic") != w.stat || fmt.Sprint(dims) != fmt.Sprint(w.dims) {
				t.Errorf("watches %s %s %s %v, want %s %s %s %v", getString(a.Inputs, "namespace"), getString(a.Inputs, "metricName"), getString(a.Inputs, "statistic"), dims, w.namespace, w.metric, w.stat, w.dims)
			}
			if got := int(getNumber(a.Inputs, "period")) * evals; got != w.window {
				t.Errorf("window %d s, want %d", got, w.window)
			}
			if why := metricExists(m, w.namespace, w.metric, w.stat, dims); why != "" {
				t.Error(why)
			}
		})
	}
	// Without an address there is no subscription, and the alarms still
	// notify the topic.
	m, err = runStack(t, map[string]string{}, inputs{build: fakeBuild("v1"), models: fakeModels(t)})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(m.of("aws:sns/topicSubscription:TopicSubscription")); n != 0 {
		t.Errorf("%d subscriptions without alarmEmail", n)
	}
}

// TestAgentLogs: one log group per agent with the configured retention;
// each host's CloudWatch agent sends exactly its agents' log files, which
// their units append to, to those groups; each role may write only its
// own agents' groups.
func TestAgentLogs(t *testing.T) {
	m, err := runStack(t, map[string]string{"logRetentionDays": "14"}, inputs{build: fakeBuild("v1"), models: fakeModels(t)})
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]bool{}
	for _, g := range m.of("aws:cloudwatch/logGroup:LogGroup") {
		if strings.HasPrefix(g.Name, "agent-") {
			groups[getString(g.Inputs, "name")] = true
			if getNumber(g.Inputs, "retentionInDays") != 14 {
				t.Errorf("%s keeps logs %v days, want 14", g.Name, getNumber(g.Inputs, "retentionInDays"))
			}
		}
	}
	for role, ud := range map[string]string{"web": webUserDataOf(t, m), "worker": workerUserDataOf(t, m)} {
		cc, err := rehearsal.ParseCloudConfig(ud)
		if err != nil {
			t.Fatal(err)
		}
		files := cc.Files()
		var cfg struct {
			Logs struct {
				LogsCollected struct {
					Files struct {
						CollectList []struct {
							FilePath      string `json:"file_path"`
							LogGroupName  string `json:"log_group_name"`
							LogStreamName string `json:"log_stream_name"`
						} `json:"collect_list"`
					} `json:"files"`
				} `json:"logs_collected"`
			} `json:"logs"`
		}
		if err := json.Unmarshal([]byte(files[cloudWatchAgentConfigPath]), &cfg); err != nil {
			t.Fatalf("%s: CloudWatch agent config: %v", role, err)
		}
		collected := map[string]string{}
		for _, f := range cfg.Logs.LogsCollected.Files.CollectList {
			collected[f.FilePath] = f.LogGroupName
			if !groups[f.LogGroupName] || f.LogStreamName != "{instance_id}" {
				t.Errorf("%s: %s goes to %s/%s, want a group of the stack, a stream per instance", role, f.FilePath, f.LogGroupName, f.LogStreamName)
			}
		}
		units := 0
		for path, content := range files {
			if !strings.HasSuffix(path, ".service") || !strings.Contains(content, "ExecStart=/opt/facecloud/bin/facecloud ") {
				continue
			}
			units++
			agent := strings.TrimSuffix(strings.TrimPrefix(path, "/etc/systemd/system/facecloud-"), ".service")
			for _, k := range []string{"StandardOutput", "StandardError"} {
				if !strings.Contains(content, k+"=append:"+logFile(agent)+"\n") {
					t.Errorf("%s: %s does not append its %s to %s", role, path, k, logFile(agent))
				}
			}
			if collected[logFile(agent)] != logGroupName("facecloud-test", agent) {
				t.Errorf("%s: %s is not sent to %s", role, logFile(agent), logGroupName("facecloud-test", agent))
			}
		}
		if units == 0 || units != len(collected) {
			t.Errorf("%s: %d agent units, %d files collected", role, units, len(collected))
		}
		if !slices.Contains(cc.Packages, "amazon-cloudwatch-agent") || !slices.ContainsFunc(cc.RunCmd, func(c []string) bool { return len(c) > 0 && c[0] == cloudWatchAgentCtl }) {
			t.Errorf("%s: the CloudWatch agent is not installed and started: packages %v, runcmd %v", role, cc.Packages, cc.RunCmd)
		}
	}
}
