package main

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/sns"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/facecloud/facecloud/agents/awsres"
)

// The stack's CloudWatch dashboard and alarms, built on metrics AWS
// publishes by itself: the load balancer's (AWS/ApplicationELB), the
// queues' (AWS/SQS) and the two groups' (AWS/AutoScaling, with the groups'
// metrics collection on). Nothing runs on the hosts for them.

// Metric namespaces.
const (
	nsELB = "AWS/ApplicationELB"
	nsSQS = "AWS/SQS"
	nsASG = "AWS/AutoScaling"
)

// monitored are the dimension values of this stack's resources.
type monitored struct {
	// loadBalancer and targetGroup are the ARN suffixes CloudWatch uses
	// as the LoadBalancer and TargetGroup dimensions.
	loadBalancer, targetGroup string
	requests, deadLetters     string
	workers, web              string
}

// metricSpec is one metric as an alarm and a dashboard name it.
type metricSpec struct {
	Namespace, Name string
	Dimensions      [][2]string
	Stat            string
}

func (m monitored) lbMetric(name, stat string) metricSpec {
	return metricSpec{nsELB, name, [][2]string{{"LoadBalancer", m.loadBalancer}}, stat}
}

func (m monitored) tgMetric(name, stat string) metricSpec {
	return metricSpec{nsELB, name, [][2]string{{"TargetGroup", m.targetGroup}, {"LoadBalancer", m.loadBalancer}}, stat}
}

func queueMetric(queue, name, stat string) metricSpec {
	return metricSpec{nsSQS, name, [][2]string{{"QueueName", queue}}, stat}
}

func groupMetric(group, name, stat string) metricSpec {
	return metricSpec{nsASG, name, [][2]string{{"AutoScalingGroupName", group}}, stat}
}

// widget is one dashboard graph: a title and its metrics.
type widget struct {
	title   string
	metrics []metricSpec
	// period in seconds of every metric of the widget.
	period int
}

// dashboardWidgets are the dashboard's graphs, top to bottom.
func dashboardWidgets(m monitored) []widget {
	return []widget{
		{"Requests (per minute, at the load balancer)", []metricSpec{m.lbMetric("RequestCount", "Sum")}, 60},
		{"Latency (target response time, seconds)", []metricSpec{m.lbMetric("TargetResponseTime", "p50"), m.lbMetric("TargetResponseTime", "p95")}, 60},
		{"5xx answers (per minute)", []metricSpec{m.lbMetric("HTTPCode_Target_5XX_Count", "Sum"), m.lbMetric("HTTPCode_ELB_5XX_Count", "Sum")}, 60},
		{"Request queue (messages)", []metricSpec{
			queueMetric(m.requests, "ApproximateNumberOfMessagesVisible", "Maximum"),
			queueMetric(m.requests, "ApproximateNumberOfMessagesNotVisible", "Maximum"),
		}, 60},
		{"Oldest queued request (seconds)", []metricSpec{queueMetric(m.requests, "ApproximateAgeOfOldestMessage", "Maximum")}, 60},
		{"Dead letters (messages)", []metricSpec{queueMetric(m.deadLetters, "ApproximateNumberOfMessagesVisible", "Maximum")}, 60},
		{"Worker fleet (instances)", []metricSpec{
			groupMetric(m.workers, "GroupDesiredCapacity", "Maximum"),
			groupMetric(m.workers, "GroupInServiceInstances", "Maximum"),
			groupMetric(m.workers, "GroupPendingInstances", "Maximum"),
			groupMetric(m.workers, "GroupMaxSize", "Maximum"),
		}, 60},
		{"Web hosts (health at the load balancer, in service)", []metricSpec{
			m.tgMetric("HealthyHostCount", "Minimum"),
			m.tgMetric("UnHealthyHostCount", "Maximum"),
			groupMetric(m.web, "GroupInServiceInstances", "Maximum"),
		}, 60},
	}
}

// dashboardBody renders the widgets as CloudWatch's dashboard body: two
// graphs a row, then a widget with the alarms' states.
func dashboardBody(region string, ws []widget, alarms []string) (string, error) {
	var out []map[string]any
	for i, w := range ws {
		var metrics []any
		for _, m := range w.metrics {
			row := []any{m.Namespace, m.Name}
			for _, d := range m.Dimensions {
				row = append(row, d[0], d[1])
			}
			row = append(row, map[string]any{"stat": m.Stat, "label": m.Name + " " + m.Stat})
			metrics = append(metrics, row)
		}
		out = append(out, map[string]any{
			"type": "metric", "x": (i % 2) * 12, "y": (i / 2) * 6, "width": 12, "height": 6,
			"properties": map[string]any{
				"title": w.title, "region": region, "view": "timeSeries", "stacked": false,
				"period": w.period, "metrics": metrics,
			},
		})
	}
	out = append(out, map[string]any{
		"type": "alarm", "x": 0, "y": ((len(ws) + 1) / 2) * 6, "width": 24, "height": 3,
		"properties": map[string]any{"title": "Alarms", "alarms": alarms},
	})
	b, err := json.Marshal(map[string]any{"widgets": out})
	if err != nil {
		return "", fmt.Errorf("dashboard body: %w", err)
	}
	return string(b), nil
}

// alarmSpec is one alarm: a metric (or an expression over metrics)
// against a threshold.
type alarmSpec struct {
	name, description string
	metric            metricSpec
	// expression, when set, is metric math over queries (id → metric);
	// the alarm watches its result.
	expression string
	queries    map[string]metricSpec
	comparison string
	threshold  float64
	period     int
	// evaluations is how many periods in a row must breach.
	evaluations int
}

// alarmSpecs are the stack's alarms.
func alarmSpecs(c Config, m monitored) []alarmSpec {
	return []alarmSpec{
		{
			name: "dead-letters", description: "requests failed " + fmt.Sprint(c.Queue.MaxReceives) + " times and were moved to the dead-letter queue",
			metric:     queueMetric(m.deadLetters, "ApproximateNumberOfMessagesVisible", "Maximum"),
			comparison: "GreaterThanThreshold", threshold: 0, period: 60, evaluations: 1,
		},
		{
			name: "queue-age", description: fmt.Sprintf("the oldest queued request has waited more than %s", c.AlarmQueueAge),
			metric:     queueMetric(m.requests, "ApproximateAgeOfOldestMessage", "Maximum"),
			comparison: "GreaterThanThreshold", threshold: c.AlarmQueueAge.Seconds(), period: 60, evaluations: 1,
		},
		{
			name: "fleet-at-max", description: fmt.Sprintf("the worker group has asked for its maximum (%d) for 10 minutes", c.MaxWorkers),
			metric:     groupMetric(m.workers, "GroupDesiredCapacity", "Minimum"),
			comparison: "GreaterThanOrEqualToThreshold", threshold: float64(c.MaxWorkers), period: 60, evaluations: 10,
		},
		{
			name: "unhealthy-web-host", description: "a web host fails the load balancer's health check (/readyz)",
			metric:     m.tgMetric("UnHealthyHostCount", "Maximum"),
			comparison: "GreaterThanThreshold", threshold: 0, period: 60, evaluations: 2,
		},
		{
			name: "5xx-rate", description: fmt.Sprintf("more than %d%% of answers over 5 minutes had a 5xx status", c.Alarm5xxPercent),
			expression: "100 * (FILL(target5xx, 0) + FILL(lb5xx, 0)) / requests",
			queries: map[string]metricSpec{
				"target5xx": m.lbMetric("HTTPCode_Target_5XX_Count", "Sum"),
				"lb5xx":     m.lbMetric("HTTPCode_ELB_5XX_Count", "Sum"),
				"requests":  m.lbMetric("RequestCount", "Sum"),
			},
			comparison: "GreaterThanThreshold", threshold: float64(c.Alarm5xxPercent), period: 300, evaluations: 1,
		},
	}
}

// alarmName is an alarm's name in CloudWatch.
func alarmName(prefix, name string) string { return prefix + "-" + name }

// monitoring is the alarms' topic, the alarms and the dashboard.
type monitoring struct {
	topic     *sns.Topic
	dashboard *cloudwatch.Dashboard
	alarms    []*cloudwatch.MetricAlarm
}

// newMonitoring makes the SNS topic the alarms notify (with an e-mail
// subscription when alarmEmail is set: AWS mails a confirmation link
// first), the alarms, and the dashboard.
func newMonitoring(ctx *pulumi.Context, c Config, names awsres.Names, fd *frontDoor) (*monitoring, error) {
	mon := &monitoring{}
	var err error
	mon.topic, err = sns.NewTopic(ctx, "alarms", &sns.TopicArgs{
		Name: pulumi.String(c.NamePrefix + "-alarms"),
		Tags: c.tags(),
	})
	if err != nil {
		return nil, fmt.Errorf("alarm topic: %w", err)
	}
	if c.AlarmEmail != "" {
		if _, err := sns.NewTopicSubscription(ctx, "alarms-email", &sns.TopicSubscriptionArgs{
			Topic:    mon.topic.Arn,
			Protocol: pulumi.String("email"),
			Endpoint: pulumi.String(c.AlarmEmail),
		}); err != nil {
			return nil, fmt.Errorf("alarm e-mail subscription: %w", err)
		}
	}
	specs := pulumi.All(fd.lb.ArnSuffix, fd.targets.ArnSuffix).ApplyT(func(v []any) any {
		return monitored{
			loadBalancer: v[0].(string), targetGroup: v[1].(string),
			requests: names.RequestQueue, deadLetters: names.DeadLetterQueue,
			workers: names.WorkerGroup, web: names.WebGroup,
		}
	})
	// The dimension values are known only once the load balancer exists;
	// the specs' shapes (names, metrics, thresholds) are known now.
	shapes := alarmSpecs(c, monitored{})
	for i, shape := range shapes {
		args := &cloudwatch.MetricAlarmArgs{
			Name:               pulumi.String(alarmName(c.NamePrefix, shape.name)),
			AlarmDescription:   pulumi.String("facecloud " + c.Stack + ": " + shape.description),
			ComparisonOperator: pulumi.String(shape.comparison),
			Threshold:          pulumi.Float64(shape.threshold),
			EvaluationPeriods:  pulumi.Int(shape.evaluations),
			DatapointsToAlarm:  pulumi.Int(shape.evaluations),
			TreatMissingData:   pulumi.String("notBreaching"),
			AlarmActions:       pulumi.Array{mon.topic.Arn},
			OkActions:          pulumi.Array{mon.topic.Arn},
			Tags:               c.tags(),
		}
		full := specs.ApplyT(func(m any) alarmSpec { return alarmSpecs(c, m.(monitored))[i] })
		if shape.expression == "" {
			args.Namespace = pulumi.String(shape.metric.Namespace)
			args.MetricName = pulumi.String(shape.metric.Name)
			args.Statistic = pulumi.String(shape.metric.Stat)
			args.Period = pulumi.Int(shape.period)
			args.Dimensions = full.ApplyT(func(a any) map[string]string { return dims(a.(alarmSpec).metric.Dimensions) }).(pulumi.StringMapOutput)
		} else {
			queries := cloudwatch.MetricAlarmMetricQueryArray{&cloudwatch.MetricAlarmMetricQueryArgs{
				Id: pulumi.String("rate"), Expression: pulumi.String(shape.expression), Label: pulumi.String(shape.name), ReturnData: pulumi.Bool(true),
			}}
			for _, id := range sortedKeys(shape.queries) {
				q := shape.queries[id]
				queries = append(queries, &cloudwatch.MetricAlarmMetricQueryArgs{
					Id: pulumi.String(id),
					Metric: &cloudwatch.MetricAlarmMetricQueryMetricArgs{
						Namespace:  pulumi.String(q.Namespace),
						MetricName: pulumi.String(q.Name),
						Stat:       pulumi.String(q.Stat),
						Period:     pulumi.Int(shape.period),
						Dimensions: full.ApplyT(func(a any) map[string]string { return dims(a.(alarmSpec).queries[id].Dimensions) }).(pulumi.StringMapOutput),
					},
				})
			}
			args.MetricQueries = queries
		}
		a, err := cloudwatch.NewMetricAlarm(ctx, "alarm-"+shape.name, args)
		if err != nil {
			return nil, fmt.Errorf("alarm %s: %w", shape.name, err)
		}
		mon.alarms = append(mon.alarms, a)
	}
	var alarmARNs pulumi.StringArray
	for _, a := range mon.alarms {
		alarmARNs = append(alarmARNs, a.Arn)
	}
	body := pulumi.All(specs, alarmARNs).ApplyT(func(v []any) (string, error) {
		return dashboardBody(c.Region, dashboardWidgets(v[0].(monitored)), v[1].([]string))
	}).(pulumi.StringOutput)
	mon.dashboard, err = cloudwatch.NewDashboard(ctx, "service", &cloudwatch.DashboardArgs{
		DashboardName: pulumi.String(c.NamePrefix),
		DashboardBody: body,
	})
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	return mon, nil
}

func dims(d [][2]string) map[string]string {
	out := map[string]string{}
	for _, kv := range d {
		out[kv[0]] = kv[1]
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// dashboardURL is the console address of the stack's dashboard.
func dashboardURL(region, name string) string {
	return fmt.Sprintf("https://%s.console.aws.amazon.com/cloudwatch/home?region=%s#dashboards/dashboard/%s", region, region, name)
}
