package store

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// usageRetention keeps a user's daily totals for a quarter.
const usageRetention = 92 * 24 * time.Hour

// usageItem is one user's totals for one UTC day, PK USER#<uid>,
// SK USAGE#<yyyy-mm-dd>; it goes with the account.
type usageItem struct {
	PK           string  `dynamo:"PK"`
	SK           string  `dynamo:"SK"`
	Turns        int     `dynamo:"turns"`
	CostUSD      float64 `dynamo:"costUsd"`
	InputTokens  int64   `dynamo:"inputTokens"`
	OutputTokens int64   `dynamo:"outputTokens"`
}

func usageSK(day time.Time) string { return "USAGE#" + day.UTC().Format(time.DateOnly) }

// addUsage adds a turn to the user's day, as a transaction item.
func (s *Store) addUsage(userID string, u ovrlrd.Usage) types.TransactWriteItem {
	now := s.now()
	num := func(f float64) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatFloat(f, 'f', -1, 64)}
	}
	return types.TransactWriteItem{Update: &types.Update{
		TableName: aws.String(s.table.Name()),
		Key: map[string]types.AttributeValue{
			attrPK: &types.AttributeValueMemberS{Value: userPK(userID)},
			attrSK: &types.AttributeValueMemberS{Value: usageSK(now)},
		},
		UpdateExpression: aws.String("ADD #turns :one, #cost :cost, #in :in, #out :out SET #ttl = :ttl"),
		ExpressionAttributeNames: map[string]string{
			"#turns": "turns", "#cost": "costUsd", "#in": "inputTokens", "#out": "outputTokens", "#ttl": attrTTL,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one": num(1), ":cost": num(u.CostUSD), ":in": num(float64(u.InputTokens)), ":out": num(float64(u.OutputTokens)),
			":ttl": num(float64(ttlOf(now.Add(usageRetention)))),
		},
	}}
}

// UsageToday returns the user's totals for the current UTC day.
func (s *Store) UsageToday(ctx context.Context, userID string) (ovrlrd.DailyUsage, error) {
	var it usageItem
	err := s.table.Get(attrPK, userPK(userID)).Range(attrSK, dynamo.Equal, usageSK(s.now())).
		Consistent(true).One(ctx, &it)
	if errors.Is(err, dynamo.ErrNotFound) {
		return ovrlrd.DailyUsage{}, nil
	}
	if err != nil {
		return ovrlrd.DailyUsage{}, dbError("get usage", err)
	}
	return ovrlrd.DailyUsage{Turns: it.Turns, Usage: ovrlrd.Usage{CostUSD: it.CostUSD, InputTokens: it.InputTokens, OutputTokens: it.OutputTokens}}, nil
}
